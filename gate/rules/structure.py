"""Structure: is the document well formed, and does the tree hang together?"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, entries, rule
from gate.rules.common import (
    ARM64,
    OCI_LAYER,
    arm64_image,
    blob,
    entry,
    image_entries,
    index_doc,
    index_entries,
    oci_image,
)
from gate.rules.mediatypes import parameterized

TWO_PLATFORMS = {
    "top": index_doc(entry("a"), entry("b", platform=ARM64)),
    "children": {"a": oci_image(), "b": arm64_image()},
}


@rule(
    "schema",
    severity="error",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/schema/image-manifest-schema.json",
        "https://github.com/opencontainers/image-spec/blob/main/schema/image-index-schema.json",
        "https://github.com/opencontainers/image-spec/blob/main/schema/defs-descriptor.json",
    ],
    fix="fix the field named in the path; the tool that wrote it has a bug",
    passing={"top": oci_image()},
    failing={"top": oci_image(layers=[{**OCI_LAYER, "size": "32"}])},
)
def schema(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A field is missing, or has the wrong type or form.

    The image-spec's JSON schemas require `schemaVersion` 2, descriptors with a `type/subtype` media type, an
    `algorithm:encoded` digest and an integer size, platforms with `os` and `architecture`, and string-valued
    annotations. Registries that validate against the schema refuse such a document with MANIFEST_INVALID, and
    clients that do not may misread it.
    """
    for node, m in ctx.manifests():
        left_to_parameters_rule = {path for path, _ in parameterized(m)}
        for problem in m.problems:
            if problem.path in left_to_parameters_rule:
                continue
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
    passing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
    failing={
        "top": index_doc(entry("img", size=1)),
        "children": {"img": oci_image()},
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
    passing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
    failing={
        "top": index_doc(entry("inner", mf.OCI_INDEX)),
        "children": {"inner": index_doc(entry("img")), "img": oci_image()},
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
                message = f"entry {d.digest} is an index nested in an index: {node.depth + 2} index levels"
                yield Hit(node, f"manifests[{i}].mediaType", f"{message}, at most {max_depth} expected", d)


@rule(
    "schema1",
    severity="error",
    sources=[
        "https://github.com/distribution/distribution/issues/3966",
        "https://docs.docker.com/registry/",
        "https://github.com/docker/cli/pull/4938",
    ],
    fix="skopeo copy --format v2s2 {source} {target}",
    passing={"top": oci_image()},
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
    passing={"top": oci_image()},
    failing={"top": oci_image(layers=[])},
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
    passing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
    failing={"top": index_doc()},
)
def empty_index(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index has no entries.

    The spec allows an empty `manifests` array, but nothing can be pulled from it on any platform ("no matching
    manifest"), and registries mishandle it: Pulp answered "repository not found" to one.
    """
    for node, index in ctx.indexes():
        if isinstance(index.data.get("manifests"), list) and not index.data["manifests"]:
            yield Hit(node, "manifests", "the index lists no manifests")


@rule(
    "index-entry-not-manifest",
    severity="warning",
    sources=[
        "https://github.com/quay/quay/blob/v3.18.0/image/docker/schema2/list.py",
        "https://github.com/moby/buildkit/issues/1440",
        "https://github.com/moby/buildkit/issues/1143",
        "https://github.com/aws/containers-roadmap/issues/505",
    ],
    fix="export the BuildKit cache as an image manifest (--cache-to type=registry,ref=...,image-manifest=true,"
    "oci-mediatypes=true), or list only manifests in the index",
    passing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
    failing={
        "top": index_doc(
            blob("application/vnd.oci.image.layer.v1.tar+gzip", "layer"),
            blob("application/vnd.buildkit.cacheconfig.v0", '{"layers":[]}'),
        )
    },
)
def index_entry_not_manifest(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index entry points at something that is not a manifest (a layer or config blob).

    BuildKit's registry cache (`--cache-to type=registry` without `image-manifest=true`) is an index whose
    entries are layer blobs and a cache-config blob. The image-spec says clients must ignore unknown entry types,
    so it is valid, but registries that check entry types refuse it: Quay's index and list schemas allow only
    manifest types (MANIFEST_INVALID), GCR answered 400, and ECR did not support it until BuildKit could write
    the cache as an image manifest.
    """
    for node, _, d in index_entries(ctx):
        if d.media_type and d.media_type not in mf.MANIFEST_TYPES:
            message = f"entry {d.digest} is a blob of type {d.media_type}, not a manifest"
            yield Hit(node, f"{d.path}.mediaType", message, d)


@rule(
    "index-entry-no-platform",
    severity="info",
    params={"index_types": [mf.OCI_INDEX, mf.DOCKER_LIST]},
    sources=[
        "https://github.com/quay/quay/pull/2657",
        "https://github.com/quay/quay/blob/v3.18.0/image/docker/schema2/list.py",
        "https://github.com/opencontainers/image-spec/blob/main/image-index.md",
    ],
    fix="give every entry its platform: docker buildx imagetools create -t TARGET IMAGE@DIGEST... "
    "(or podman manifest annotate --os OS --arch ARCH)",
    passing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
    failing={"top": index_doc(entry("img", platform=None)), "children": {"img": oci_image()}},
)
def index_entry_no_platform(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index entry has no `platform`.

    `platform` is optional in an OCI index (referrer indexes, cosign and ORAS indexes leave it out), but Quay's
    Docker list schema requires it in every version and its OCI index schema required it up to 3.10, so such an
    index is refused with MANIFEST_INVALID there. `index_types` names the index types checked; entries that are
    not manifests are index-entry-not-manifest's business.
    """
    checked = set(params.get("index_types", ()))
    for node, index, d in index_entries(ctx):
        if index.type in checked and d.platform is None and d.media_type in mf.MANIFEST_TYPES:
            yield Hit(node, d.path, f"entry {d.digest} ({d.media_type}) has no platform", d)


@rule(
    "single-entry-no-platform",
    severity="warning",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/image-index.md",
        "https://github.com/containers/image/blob/main/manifest/oci_index.go",
    ],
    fix="push the image manifest itself at the tag (skopeo copy {source}@DIGEST {target}), "
    "or give the entry its platform",
    passing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
    failing={"top": index_doc(entry("img", platform=None)), "children": {"img": oci_image()}},
)
def single_entry_no_platform(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The top index wraps a single image manifest that has no `platform`.

    A wrapper index (one entry, no platform) gives a platform matcher nothing to match: containers/image (podman,
    skopeo, buildah) skips entries without a platform and answers "no image found in manifest list for
    architecture", and runtimes that want a single image at the tag refuse the index.
    """
    root = ctx.image.nodes[0]
    top = root.manifest
    if top is not None and top.kind == "index" and len(top.manifests) == 1 and top.manifests[0].platform is None:
        d = top.manifests[0]
        yield Hit(root, d.path, f"the index's only entry {d.digest} has no platform", d)


def _normalized(p: mf.Platform) -> tuple[str | None, ...]:
    """The platform as matchers compare it: arm64 without a variant is arm64/v8."""
    variant = p.variant or ("v8" if p.architecture == "arm64" else None)
    return (p.os, p.architecture, variant, p.os_version)


@rule(
    "duplicate-platform",
    severity="warning",
    sources=[
        "https://github.com/moby/moby/issues/41507",
        "https://github.com/distribution/distribution/issues/2399",
        "https://github.com/GoogleContainerTools/jib/issues/2754",
    ],
    fix="keep one image per platform: docker buildx imagetools create -t TARGET IMAGE@DIGEST... (one per platform)",
    passing=TWO_PLATFORMS,
    failing={
        "top": index_doc(entry("a"), entry("b")),
        "children": {"a": oci_image(), "b": oci_image(annotations={"build": "2"})},
    },
)
def duplicate_platform(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """Two entries of one index are for the same platform.

    Registries store such an index, but a pull picks the first matching entry, so the other image is unreachable
    and which one runs depends on entry order (os, architecture, variant and os.version are compared, arm64 with
    no variant as arm64/v8; attestation entries are not platforms and are ignored).
    """
    seen: dict[tuple[int, tuple[str | None, ...]], mf.Descriptor] = {}
    for node, d in image_entries(ctx):
        if d.platform is None:
            continue
        key = (id(node), _normalized(d.platform))
        first = seen.setdefault(key, d)
        if first is not d:
            yield Hit(node, d.path, f"entry {d.digest} is for {d.platform}, like {first.path} ({first.digest})", d)


@rule(
    "duplicate-entry-digest",
    severity="warning",
    sources=["https://github.com/opencontainers/image-spec/blob/main/image-index.md"],
    fix="list each manifest once: docker buildx imagetools create -t TARGET IMAGE@DIGEST...",
    passing=TWO_PLATFORMS,
    failing={"top": index_doc(entry("a"), entry("a", platform=ARM64)), "children": {"a": oci_image()}},
)
def duplicate_entry_digest(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """One index lists the same child digest twice.

    One manifest cannot be two platforms: one of the entries mislabels it, so a pull on the other platform gets
    an image built for another one (exec format error) or a tool that keys entries by digest drops one.
    Attestation entries are ignored.
    """
    seen: dict[tuple[int, str], mf.Descriptor] = {}
    for node, d in image_entries(ctx):
        if d.digest is None:
            continue
        first = seen.setdefault((id(node), d.digest), d)
        if first is not d:
            yield Hit(node, d.path, f"entry {d.digest} is listed again (first as {first.path})", d)


@rule(
    "index-at-tag",
    severity="error",
    sources=[
        "https://docs.aws.amazon.com/lambda/latest/dg/images-create.html",
        "https://repost.aws/questions/QUIZjd2sL_TtCuoqtg5Q30LA/does-lambda-not-support-multi-architecture-container-images-manifests",
    ],
    fix="push one platform's image manifest at the tag: docker buildx build --platform linux/amd64 "
    "--provenance=false --sbom=false ..., or skopeo copy --override-arch amd64 {source} {target}",
    passing={"top": oci_image()},
    failing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
)
def index_at_tag(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The tag points at an index, not at a single image manifest.

    Consumers that take one image (AWS Lambda) refuse any index, including one that buildx made for a single
    platform by adding a provenance attestation entry.
    """
    top = ctx.image.top
    if top.kind == "index":
        yield Hit(ctx.image.nodes[0], "", f"the tag is an index ({top.type}) of {len(top.manifests)} entries")


@rule(
    "children-not-inspected",
    severity="warning",
    sources=["https://github.com/opencontainers/image-spec/blob/main/image-index.md"],
    fix="check the image where its children are (docker://REF or oci:DIR:TAG), or pass --children DIR",
    passing={"top": index_doc(entry("img")), "children": {"img": oci_image()}},
    failing={"top": index_doc(entry("img")), "children": {"img": oci_image()}, "saved": True},
)
def children_not_inspected(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index was checked without its child manifests, so the rules that read them did not run.

    A saved index (what `skopeo inspect --raw` printed) carries only descriptors. The gate cannot say that its
    children would be accepted — their types, sizes, layers and configs were never read — so it says so.
    """
    if ctx.image.children_inspected:
        return
    for node, index in ctx.indexes():
        count = sum(1 for d in index.manifests if d.media_type in mf.MANIFEST_TYPES)
        if count:
            yield Hit(node, "manifests", f"{count} child manifests were not inspected")
