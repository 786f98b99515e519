"""Attestations and OCI 1.1: what BuildKit and the referrers model add to an index."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, rule
from gate.rules.common import EMPTY_CONFIG, blob, entry, index_doc, is_attestation, oci_image


@rule(
    "attestation-entries",
    severity="info",
    sources=[
        "https://github.com/docker/buildx/issues/1509",
        "https://github.com/docker/build-push-action/issues/900",
        "https://github.com/moby/buildkit/blob/master/docs/attestations/attestation-storage.md",
    ],
    fix="build without them (docker buildx build --provenance=false --sbom=false), or keep them where supported",
    passing={"top": index_doc(entry("a")), "children": {"a": oci_image()}},
    failing={
        "top": index_doc(
            entry("a"),
            entry(
                "att",
                platform={"os": "unknown", "architecture": "unknown"},
                annotations={"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": "@a"},
            ),
        ),
        "children": {
            "a": oci_image(),
            "att": oci_image(
                layers=[
                    blob(
                        "application/vnd.in-toto+json",
                        "provenance",
                        annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
                    )
                ]
            ),
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


_SUBJECT = {"mediaType": mf.OCI_MANIFEST, "digest": "@img", "size": "@img"}
_SBOM_LAYER = blob("application/spdx+json", '{"spdxVersion":"SPDX-2.3"}')
_REFERRER = oci_image(artifactType="application/spdx+json", config=EMPTY_CONFIG, layers=[_SBOM_LAYER])


@rule(
    "subject-field",
    severity="info",
    sources=[
        "https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests-with-subject",
        "https://github.com/docker/hub-feedback/issues/2307",
        "https://gitlab.com/gitlab-org/container-registry/-/issues/1205",
    ],
    fix="push the subject before its referrers (oras copy -r, cosign copy), or push without referrers",
    passing={"top": oci_image()},
    failing={"top": {**_REFERRER, "subject": _SUBJECT}, "children": {"img": oci_image()}},
)
def subject_field(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The manifest has a `subject`: it is an OCI 1.1 referrer (signature, SBOM, attestation).

    Registries must accept a subject that is not there yet, but GitLab answers "blob unknown to registry" unless
    the subject was pushed first, and Docker Hub refused subjects (404) until 2023.
    """
    for node, m in ctx.manifests():
        if m.subject is not None:
            yield Hit(node, "subject", f"subject {m.subject.digest} ({m.subject.media_type})")


@rule(
    "artifact-type",
    severity="info",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/manifest.md",
        "https://github.com/quay/quay/pull/2659",
        "https://github.com/sigstore/sigstore-js/pull/1058",
    ],
    fix="push it as a plain image, or to a registry that supports OCI 1.1 artifacts",
    passing={"top": oci_image()},
    failing={"top": _REFERRER},
)
def artifact_type(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The manifest declares an `artifactType` (an OCI 1.1 artifact).

    Quay models `artifactType` from 3.11; ECR stripped it from pushes until March 2024 (per sigstore-js).
    """
    for node, m in ctx.manifests():
        if m.artifact_type:
            yield Hit(node, "artifactType", f"artifactType {m.artifact_type}")


@rule(
    "empty-config",
    severity="info",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/manifest.md#guidance-for-an-empty-descriptor",
        "https://github.com/sigstore/sigstore-js/pull/1058",
        "https://github.com/quay/quay/blob/v3.11.0/image/oci/descriptor.py",
    ],
    fix="use a registry that takes OCI 1.1 artifacts, or give the artifact a config type the registry allows",
    passing={"top": oci_image()},
    failing={"top": _REFERRER},
)
def empty_config(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The config is the empty descriptor (application/vnd.oci.empty.v1+json).

    OCI 1.1 artifacts (ORAS, BuildKit 0.32 OCI-artifact attestations, cosign bundles) use it. Quay up to 3.11
    refuses it through its config allow-list, and ECR could not handle it before March 2024.
    """
    for node, m in ctx.images():
        if m.config is not None and m.config.media_type == mf.OCI_EMPTY:
            yield Hit(node, "config.mediaType", f"config is the empty descriptor ({mf.OCI_EMPTY})")


@rule(
    "subject-platform",
    severity="warning",
    sources=[
        "https://github.com/dragonflyoss/nydus/issues/1691",
        "https://github.com/moby/buildkit/issues/6171",
        "https://github.com/moby/buildkit/pull/6191",
    ],
    fix="drop `platform` from the subject descriptor (BuildKit fixed its exporter in moby/buildkit#6191)",
    passing={"top": {**_REFERRER, "subject": _SUBJECT}, "children": {"img": oci_image()}},
    failing={
        "top": {**_REFERRER, "subject": {**_SUBJECT, "platform": {"os": "linux", "architecture": "amd64"}}},
        "children": {"img": oci_image()},
    },
)
def subject_platform(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The `subject` descriptor carries a `platform`.

    `platform` belongs to index entries. ECR parses manifests strictly and refuses the referrer
    (InvalidParameterException, "invalid manifest JSON"); GitLab was reported to do the same.
    """
    for node, m in ctx.manifests():
        if m.subject is not None and "platform" in m.subject.data:
            yield Hit(node, "subject.platform", f"subject {m.subject.digest} carries platform {m.subject.platform}")


@rule(
    "config-type-not-allowed",
    severity="error",
    params={"allowed": [mf.OCI_CONFIG, mf.DOCKER_CONFIG]},
    sources=[
        "https://github.com/quay/quay/blob/v3.18.0/config.py",
        "https://docs.redhat.com/en/documentation/red_hat_quay/3.10/html/manage_red_hat_quay/supported-oci-media-types",
        "https://gitlab.com/gitlab-org/container-registry/-/issues/951",
    ],
    fix="use an allowed config type, or ask the registry's admin to allow it (Quay: ALLOWED_OCI_ARTIFACT_TYPES)",
    passing={"top": oci_image()},
    failing={"top": oci_image(config=blob("application/vnd.acme.config.v1+json", "{}"))},
)
def config_type_not_allowed(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An OCI manifest's config type is not on the registry's allow-list.

    Quay up to 3.11 takes only the config types in ALLOWED_OCI_ARTIFACT_TYPES (image config, Helm, source
    images, vnd.unknown) and answers MANIFEST_INVALID to others, the empty config included; GitLab.com answers
    "unknown media type". `allowed` holds types or globs (application/vnd.cncf.helm.*). A Docker config in an
    OCI manifest is oci-manifest-docker-parts' business.
    """
    allowed = list(params.get("allowed", ()))
    for node, m in ctx.images():
        t = m.config.media_type if m.config else None
        if m.type != mf.OCI_MANIFEST or not t or t.startswith(mf.DOCKER_PREFIX):
            continue
        if not _listed(t, allowed):
            listed = ", ".join(allowed)
            yield Hit(node, "config.mediaType", f"config type {t} is not on the allow-list ({listed})")


@rule(
    "layer-type-not-allowed",
    severity="error",
    params={"allowed": ["application/vnd.oci.image.layer.*"]},
    sources=[
        "https://github.com/quay/quay/blob/v3.18.0/config.py",
        "https://github.com/quay/quay/blob/v3.11.0/image/oci/descriptor.py",
        "https://docs.redhat.com/en/documentation/red_hat_quay/3.10/html/manage_red_hat_quay/supported-oci-media-types",
    ],
    fix="use an allowed layer type, or ask the registry's admin to allow it (Quay: ALLOWED_OCI_ARTIFACT_TYPES)",
    passing={"top": oci_image()},
    failing={"top": oci_image(layers=[blob("application/vnd.acme.payload.v1.tar", "payload")])},
)
def layer_type_not_allowed(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An OCI manifest has a layer type that is not on the registry's allow-list.

    Quay up to 3.11 takes OCI layer types plus the extras its ALLOWED_OCI_ARTIFACT_TYPES registers (cosign,
    SPDX, Syft, CycloneDX, in-toto, Helm chart content) and answers MANIFEST_INVALID to other layer types.
    `allowed` holds types or globs. Docker layer types in an OCI manifest are oci-manifest-docker-parts' business.
    """
    allowed = list(params.get("allowed", ()))
    for node, m in ctx.images():
        if m.type != mf.OCI_MANIFEST:
            continue
        for d in m.layers:
            t = d.media_type
            if t and not t.startswith(mf.DOCKER_PREFIX) and not _listed(t, allowed):
                message = f"layer type {t} is not on the allow-list ({', '.join(allowed)})"
                yield Hit(node, f"{d.path}.mediaType", message)


def _listed(media_type: str, allowed: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(media_type, pattern) for pattern in allowed)
