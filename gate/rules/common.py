"""Shared walks over a resolved tree, and the building blocks the rules' examples are made of.

Not a family: `catalog()` never imports it for rules; the family modules import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gate import manifest as mf
from gate.rules import Context

_ATTESTATION_TYPE = "vnd.docker.reference.type"


def is_attestation(d: mf.Descriptor) -> bool:
    """A BuildKit attestation entry: `vnd.docker.reference.type: attestation-manifest` (platform unknown/unknown)."""
    return d.annotations.get(_ATTESTATION_TYPE) == "attestation-manifest"


def index_entries(ctx: Context) -> Iterator[tuple[mf.Node, mf.Manifest, mf.Descriptor]]:
    """(index node, index, entry) for every entry of every index, whether or not the child was fetched."""
    for node, index in ctx.indexes():
        for d in index.manifests:
            yield node, index, d


def image_entries(ctx: Context) -> Iterator[tuple[mf.Node, mf.Descriptor]]:
    """Entries that stand for a runnable platform: not attestations, not blobs, not unknown/unknown."""
    for node, _, d in index_entries(ctx):
        if is_attestation(d) or (d.platform and d.platform.os == "unknown"):
            continue
        yield node, d


def parts(ctx: Context) -> Iterator[tuple[mf.Node, mf.Manifest, mf.Descriptor]]:
    """(node, image manifest, descriptor) for the config and every layer of every image manifest."""
    for node, m in ctx.images():
        for d in ([m.config] if m.config else []) + m.layers:
            yield node, m, d


def own_descriptors(m: mf.Manifest) -> list[mf.Descriptor]:
    """Every descriptor a manifest holds: index entries, config, layers and subject."""
    return m.manifests + ([m.config] if m.config else []) + m.layers + ([m.subject] if m.subject else [])


def descriptors(ctx: Context) -> Iterator[tuple[mf.Node, mf.Descriptor]]:
    """Every descriptor in the tree."""
    for node, m in ctx.manifests():
        for d in own_descriptors(m):
            yield node, d


def typed_nodes(ctx: Context) -> Iterator[tuple[mf.Node, str]]:
    """(node, manifest media type) for every manifest in the tree, from its body or, unfetched, its descriptor."""
    for node in ctx.image.nodes:
        if node.manifest is not None:
            t = node.manifest.type
        else:
            t = node.descriptor.media_type if node.descriptor else None
            if t not in mf.MANIFEST_TYPES:
                continue  # not a manifest: index-entry-not-manifest's business
        if t:
            yield node, t


# --- example building blocks: every "%text" is a real blob, so an example can be pushed as it is -------------------


def blob(media_type: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"%{text}", "size": f"%{text}", **extra}


OCI_CONFIG = blob(mf.OCI_CONFIG, '{"architecture":"amd64","os":"linux"}')
OCI_LAYER = blob("application/vnd.oci.image.layer.v1.tar+gzip", "layer")
DOCKER_CONFIG = blob(mf.DOCKER_CONFIG, '{"architecture":"amd64","os":"linux"}')
DOCKER_LAYER = blob(mf.DOCKER_LAYER, "layer")
EMPTY_CONFIG = blob(mf.OCI_EMPTY, "{}")
AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}


def oci_image(**fields: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "config": OCI_CONFIG, "layers": [OCI_LAYER], **fields}


def docker_image(**fields: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mf.DOCKER_MANIFEST,
        "config": DOCKER_CONFIG,
        "layers": [DOCKER_LAYER],
        **fields,
    }


def arm64_image(**fields: Any) -> dict[str, Any]:
    config = blob(mf.OCI_CONFIG, '{"architecture":"arm64","os":"linux","variant":"v8"}')
    return oci_image(config=config, **fields)


def entry(child: str, media_type: str = mf.OCI_MANIFEST, platform: Any = AMD64, **extra: Any) -> dict[str, Any]:
    """An index entry pointing at example child `child` (platform None: no platform)."""
    out = {"mediaType": media_type, "digest": f"@{child}", "size": f"@{child}", **extra}
    if platform is not None:
        out["platform"] = platform
    return out


def index_doc(*entries: dict[str, Any], media_type: str = mf.OCI_INDEX, **fields: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": list(entries), **fields}
