"""Attestations and OCI 1.1: what BuildKit and the referrers model add to an index."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, rule
from gate.rules.common import is_attestation
from gate.rules.mediatypes import OCI_IMAGE


@rule(
    "attestation-entries",
    severity="info",
    sources=[
        "https://github.com/docker/buildx/issues/1509",
        "https://github.com/docker/build-push-action/issues/900",
        "https://github.com/moby/buildkit/blob/master/docs/attestations/attestation-storage.md",
    ],
    fix="build without them (docker buildx build --provenance=false --sbom=false), or keep them where supported",
    passing={
        "top": {
            "schemaVersion": 2,
            "mediaType": mf.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mf.OCI_MANIFEST,
                    "digest": "@a",
                    "size": "@a",
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        },
        "children": {"a": OCI_IMAGE},
    },
    failing={
        "top": {
            "schemaVersion": 2,
            "mediaType": mf.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mf.OCI_MANIFEST,
                    "digest": "@a",
                    "size": "@a",
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": mf.OCI_MANIFEST,
                    "digest": "@att",
                    "size": "@att",
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": "@a",
                    },
                },
            ],
        },
        "children": {
            "a": OCI_IMAGE,
            "att": {
                **OCI_IMAGE,
                "layers": [
                    {
                        "mediaType": "application/vnd.in-toto+json",
                        "digest": "%provenance",
                        "size": "%provenance",
                        "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
                    }
                ],
            },
        },
    },
)
def attestation_entries(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The index carries BuildKit attestation manifests (platform unknown/unknown).

    buildx 0.10+ adds provenance attestations by default. Most registries store them, but several show an extra
    unknown/unknown platform (GHCR, zot, ECR's console), Harbor's scanner fails on them, Artifactory 6.x refuses the
    index, and runtimes that need a single image (AWS Lambda, Azure Container Instances) refuse it.
    """
    for node, index in ctx.indexes():
        for i, d in enumerate(index.manifests):
            if is_attestation(d):
                ref = d.annotations.get("vnd.docker.reference.digest", "?")
                yield Hit(node, f"manifests[{i}]", f"attestation manifest for {ref}", d)
