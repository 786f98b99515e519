"""Structure: is the document well formed, and does the tree hang together?"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, entries, rule

_IMAGE = {"mediaType": mf.OCI_MANIFEST, "schemaVersion": 2}
_CONFIG = {"mediaType": mf.OCI_CONFIG, "digest": "%{}", "size": "%{}"}
_LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "%layer", "size": "%layer"}
_AMD64 = {"os": "linux", "architecture": "amd64"}


@rule(
    "schema",
    severity="error",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/schema/image-manifest-schema.json",
        "https://github.com/opencontainers/image-spec/blob/main/schema/image-index-schema.json",
        "https://github.com/opencontainers/image-spec/blob/main/schema/defs-descriptor.json",
    ],
    fix="fix the field named in the path; the tool that wrote it has a bug",
    passing={"top": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]}},
    failing={"top": {**_IMAGE, "config": _CONFIG, "layers": [{**_LAYER, "size": "32"}]}},
)
def schema(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A field is missing, or has the wrong type or form.

    The image-spec's JSON schemas require `schemaVersion` 2, descriptors with a `type/subtype` media type, an
    `algorithm:encoded` digest and an integer size, platforms with `os` and `architecture`, and string-valued
    annotations. Registries that validate against the schema refuse such a document with MANIFEST_INVALID, and
    clients that do not may misread it.
    """
    for node, m in ctx.manifests():
        for problem in m.problems:
            yield Hit(node, problem.path, f"{problem.path or 'the document'} {problem.message}")


@rule(
    "descriptor-size-mismatch",
    severity="error",
    needs_children=True,
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/descriptor.md",
        "https://github.com/distribution/distribution/issues/3528",
    ],
    fix="rebuild the index from the manifests as stored (docker buildx imagetools create, or skopeo copy --all)",
    passing={
        "top": {
            "mediaType": mf.OCI_INDEX,
            "schemaVersion": 2,
            "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": "@img", "size": "@img", "platform": _AMD64}],
        },
        "children": {"img": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]}},
    },
    failing={
        "top": {
            "mediaType": mf.OCI_INDEX,
            "schemaVersion": 2,
            "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": "@img", "size": 1, "platform": _AMD64}],
        },
        "children": {"img": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]}},
    },
)
def descriptor_size_mismatch(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index entry's `size` is not the length of the manifest it points at.

    The digest matched, so the bytes are right and the descriptor is wrong. Clients that check sizes (containerd,
    containers/image) refuse to pull through such an entry; registries that validate children refuse the index.
    """
    for node, _, child in entries(ctx):
        d, m = child.descriptor, child.manifest
        if d is not None and m is not None and d.size is not None and d.size != m.size:
            yield Hit(node, f"{d.path}.size", f"entry says size {d.size}, the manifest is {m.size} bytes", d)


@rule(
    "nested-index",
    severity="warning",
    needs_children=False,
    params={"max_depth": 1},
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/image-index.md",
        "https://github.com/quay/quay/pull/3427",
        "https://github.com/acorn-io/runtime/issues/951",
    ],
    fix="flatten it: list the image manifests in one index (docker buildx imagetools create -t TARGET IMAGE@DIGEST...)",
    passing={
        "top": {
            "mediaType": mf.OCI_INDEX,
            "schemaVersion": 2,
            "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": "@img", "size": "@img", "platform": _AMD64}],
        },
        "children": {"img": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]}},
    },
    failing={
        "top": {
            "mediaType": mf.OCI_INDEX,
            "schemaVersion": 2,
            "manifests": [{"mediaType": mf.OCI_INDEX, "digest": "@inner", "size": "@inner", "platform": _AMD64}],
        },
        "children": {
            "inner": {
                "mediaType": mf.OCI_INDEX,
                "schemaVersion": 2,
                "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": "@img", "size": "@img", "platform": _AMD64}],
            },
            "img": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]},
        },
    },
)
def nested_index(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index entry is itself an index.

    The image-spec allows nesting (registries SHOULD support it), but Quay before 3.14 could not parse a child
    index and quay.io refused nested indexes in 2022. `max_depth` is how many index levels are fine (1 = none
    nested).
    """
    max_depth = int(params.get("max_depth", 1))
    for node, index in ctx.indexes():
        for i, d in enumerate(index.manifests):
            if d.media_type in mf.INDEX_TYPES and node.depth + 2 > max_depth:
                yield Hit(node, f"manifests[{i}].mediaType", f"entry {d.digest} is an index nested in an index", d)


@rule(
    "schema1",
    severity="error",
    sources=[
        "https://github.com/distribution/distribution/issues/3966",
        "https://docs.docker.com/registry/",
        "https://github.com/docker/cli/pull/4938",
    ],
    fix="skopeo copy --format v2s2 {source} {target}",
    passing={"top": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]}},
    failing={
        "top": {
            "schemaVersion": 1,
            "name": "acme/app",
            "tag": "1",
            "architecture": "amd64",
            "fsLayers": [{"blobSum": "sha256:" + "c" * 64}],
            "history": [{"v1Compatibility": "{}"}],
        }
    },
)
def schema1(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The manifest is Docker image manifest v2, schema 1.

    Schema 1 is deprecated: Docker Hub stopped accepting pushes of it, distribution 2.x refuses it by default and
    v3 removed it, zot refuses it, and Docker Engine 26+ no longer pulls it.
    """
    for node, m in ctx.manifests():
        if m.kind == "schema1":
            yield Hit(node, "schemaVersion", "Docker schema 1 manifest")


@rule(
    "empty-layers",
    severity="error",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/schema/image-manifest-schema.json",
        "https://github.com/opencontainers/image-spec/issues/1025",
        "https://github.com/moby/buildkit/pull/4331",
    ],
    fix="add a layer; an artifact with no content uses the empty descriptor (application/vnd.oci.empty.v1+json)",
    passing={"top": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]}},
    failing={"top": {**_IMAGE, "config": _CONFIG, "layers": []}},
)
def empty_layers(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An image manifest has an empty `layers` array.

    The image-spec's schema requires at least one layer (the empty descriptor exists for artifacts with none).
    GCR and ECR refused `layers: []`, ECR says "Image has to have at least 1 layer"; distribution accepts it.
    """
    for node, m in ctx.images():
        if isinstance(m.data.get("layers"), list) and not m.data["layers"]:
            yield Hit(node, "layers", "no layers")


@rule(
    "empty-index",
    severity="warning",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/image-index.md",
        "https://github.com/pulp/pulp_container/issues/854",
        "https://github.com/containers/podman/pull/8934",
    ],
    fix="push at least one image manifest into the index, or do not push the tag",
    passing={
        "top": {
            "schemaVersion": 2,
            "mediaType": mf.OCI_INDEX,
            "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": "@img", "size": "@img", "platform": _AMD64}],
        },
        "children": {"img": {**_IMAGE, "config": _CONFIG, "layers": [_LAYER]}},
    },
    failing={"top": {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": []}},
)
def empty_index(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index has no entries.

    The spec allows an empty `manifests` array, but nothing can be pulled from it on any platform ("no matching
    manifest"), and registries mishandle it: Pulp answered "repository not found" to one.
    """
    for node, index in ctx.indexes():
        if isinstance(index.data.get("manifests"), list) and not index.data["manifests"]:
            yield Hit(node, "manifests", "the index lists no manifests")
