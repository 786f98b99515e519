"""Media types: do the index, its children, and their configs and layers speak the same family?"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, entries, rule
from gate.rules.common import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    docker_image,
    entry,
    index_doc,
    oci_image,
    own_descriptors,
    typed_nodes,
)

OCI_IMAGE = oci_image()
DOCKER_IMAGE = docker_image()
_WINDOWS = {"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2655"}
CONVERT = "skopeo copy --all --format oci {source} {target}"


@rule(
    "mixed-oci-index",
    severity="error",
    needs_children=False,
    sources=[
        "https://github.com/docker-library/python/issues/953",
        "https://github.com/quay/quay/pull/6070",
        "https://github.com/quay/quay/blob/v3.17.4/image/oci/index.py",
        "https://github.com/opencontainers/image-spec/issues/1150",
    ],
    fix=CONVERT,
    passing={"top": index_doc(entry("a")), "children": {"a": OCI_IMAGE}},
    failing={
        "top": index_doc(entry("a"), entry("w", mf.DOCKER_MANIFEST, _WINDOWS)),
        "children": {"a": OCI_IMAGE, "w": DOCKER_IMAGE},
    },
)
def mixed_oci_index(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An OCI image index lists Docker manifests (a mixed index).

    The image-spec allows it and Docker Hub serves such indexes (python:3.11 and 3.12, whose Windows entries are
    Docker v2 schema 2), but Quay refused them with MANIFEST_INVALID until 3.17.4 / 3.18, after every blob was
    uploaded. `skopeo copy --all --format oci` rewrites the index and every child as OCI.
    """
    for node, index in ctx.indexes():
        if index.type != mf.OCI_INDEX:
            continue
        for i, d in enumerate(index.manifests):
            if d.media_type in mf.DOCKER_MANIFEST_TYPES:
                yield Hit(
                    node, f"manifests[{i}].mediaType", f"OCI index entry is a Docker manifest ({d.media_type})", d
                )


@rule(
    "mixed-docker-list",
    severity="error",
    sources=[
        "https://github.com/quay/quay/blob/v3.18.0/image/docker/schema2/list.py",
        "https://github.com/podman-container-tools/buildah/issues/3550",
    ],
    fix=CONVERT,
    passing={
        "top": index_doc(entry("d", mf.DOCKER_MANIFEST), media_type=mf.DOCKER_LIST),
        "children": {"d": DOCKER_IMAGE},
    },
    failing={"top": index_doc(entry("o"), media_type=mf.DOCKER_LIST), "children": {"o": OCI_IMAGE}},
)
def mixed_docker_list(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A Docker manifest list lists OCI manifests or indexes.

    The Docker list format only defines Docker children. Quay's list schema allows only Docker v2 schema 2 and
    schema 1 children in every version, so the list is refused with MANIFEST_INVALID.
    """
    for node, index in ctx.indexes():
        if index.type != mf.DOCKER_LIST:
            continue
        for i, d in enumerate(index.manifests):
            if d.media_type in mf.OCI_MANIFEST_TYPES:
                yield Hit(
                    node, f"manifests[{i}].mediaType", f"Docker list entry is an OCI manifest ({d.media_type})", d
                )


@rule(
    "descriptor-media-type-mismatch",
    severity="error",
    needs_children=True,
    sources=[
        "https://github.com/distribution/distribution/blob/v3.1.1/manifests.go",
        "https://github.com/chainguard-forks/kaniko/issues/160",
        "https://github.com/google/go-containerregistry/blob/main/cmd/crane/doc/crane_validate.md",
    ],
    fix="rebuild the index from the manifests as stored (docker buildx imagetools create, or skopeo copy --all)",
    passing={"top": index_doc(entry("a")), "children": {"a": OCI_IMAGE}},
    failing={"top": index_doc(entry("a", mf.DOCKER_MANIFEST)), "children": {"a": OCI_IMAGE}},
)
def descriptor_media_type_mismatch(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An index entry's `mediaType` is not the `mediaType` its manifest declares.

    The registry receives the child with the type the client sends, and distribution refuses a body whose own
    `mediaType` differs from the Content-Type ("mediaType in manifest should be ..."); pulls by platform then fail.
    """
    for node, _, child in entries(ctx):
        d, m = child.descriptor, child.manifest
        if d is not None and m is not None and m.media_type and d.media_type and d.media_type != m.media_type:
            yield Hit(node, f"{d.path}.mediaType", f"entry says {d.media_type}, the manifest says {m.media_type}", d)


def _part_family(media_type: str | None) -> str:
    t = media_type or ""
    if t.startswith(mf.DOCKER_PREFIX):
        return "docker"
    if t.startswith("application/vnd.oci."):
        return "oci"
    return "other"


V2S2_CONFIG_TYPES = frozenset({mf.DOCKER_CONFIG, "application/vnd.docker.plugin.v1+json"})
V2S2_LAYER_TYPES = frozenset({mf.DOCKER_LAYER, mf.DOCKER_FOREIGN_LAYER})


@rule(
    "docker-v2s2-undefined-types",
    severity="error",
    sources=[
        "https://github.com/distribution/distribution/blob/main/docs/content/spec/manifest-v2-2.md",
        "https://github.com/quay/quay/blob/v3.18.0/image/docker/schema2/manifest.py",
        "https://github.com/containers/image/pull/2906",
        "https://github.com/imagegenius/docker-immich/pull/717",
    ],
    fix="rebuild with OCI media types (docker buildx build --output type=image,oci-mediatypes=true,...) or convert "
    "with regctl image mod SOURCE --to-oci --create TARGET (skopeo cannot read such a manifest to convert it)",
    passing={"top": DOCKER_IMAGE},
    failing={
        "top": {
            **DOCKER_IMAGE,
            "layers": [{**DOCKER_LAYER, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.zstd"}],
        }
    },
)
def docker_v2s2_undefined_types(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A Docker v2 schema 2 manifest has a config or layer type that schema 2 does not define.

    Schema 2 defines one config type and two layer types (gzip and foreign gzip). OCI types, in-toto layers,
    Docker-typed zstd (`...diff.tar.zstd`) or uncompressed layers inside it are refused by Quay's schema with
    MANIFEST_INVALID, and containers/image (skopeo, podman, buildah) refuses to pull them ("unsupported docker
    v2s2 media type"), even where a registry such as GHCR stored them. For the same reason `skopeo copy --format oci`
    cannot convert it: rebuild with OCI media types, or convert with a tool that rewrites raw manifests (regctl).
    """
    for node, m in ctx.images():
        if m.type != mf.DOCKER_MANIFEST:
            continue
        if m.config and m.config.media_type not in V2S2_CONFIG_TYPES:
            yield Hit(node, "config.mediaType", f"Docker v2s2 manifest with config type {m.config.media_type}")
        for d in m.layers:
            if d.media_type not in V2S2_LAYER_TYPES:
                yield Hit(node, f"{d.path}.mediaType", f"Docker v2s2 manifest with layer type {d.media_type}")


@rule(
    "oci-manifest-docker-parts",
    severity="warning",
    sources=[
        "https://github.com/podman-container-tools/buildah/issues/4551",
        "https://github.com/opencontainers/image-spec/blob/main/manifest.md",
    ],
    fix=CONVERT,
    passing={"top": OCI_IMAGE},
    failing={"top": {**OCI_IMAGE, "config": DOCKER_CONFIG}},
)
def oci_manifest_docker_parts(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An OCI image manifest has a Docker config or layer media type.

    Docker Hub accepted such Ubuntu images in 2023, and buildah and skopeo then refused to pull them; Quay up to
    3.11 refuses a Docker config type in an OCI manifest through its config allow-list.
    """
    for node, m in ctx.images():
        if m.type != mf.OCI_MANIFEST:
            continue
        for d in ([m.config] if m.config else []) + m.layers:
            if _part_family(d.media_type) == "docker":
                yield Hit(
                    node, f"{d.path}.mediaType", f"OCI manifest with a Docker {d.path.split('[')[0]} ({d.media_type})"
                )


@rule(
    "missing-media-type",
    severity="warning",
    sources=[
        "https://github.com/containers/image/pull/584",
        "https://github.com/falcosecurity/falcoctl/issues/302",
        "https://github.com/cloudflare/serverless-registry/pull/158",
        "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutImage.html",
    ],
    fix="set the top-level mediaType (e.g. oras push --image-spec v1.1, or skopeo copy --format oci {source} {target})",
    passing={"top": OCI_IMAGE},
    failing={"top": {k: v for k, v in OCI_IMAGE.items() if k != "mediaType"}},
)
def missing_media_type(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An OCI manifest or index has no top-level `mediaType`.

    The OCI spec makes it optional (the type travels in Content-Type), but ECR answers 405 "Invalid JSON syntax"
    unless the type is given separately, and some registries' schemas require it. (A Docker manifest without one
    is docker-missing-media-type.)
    """
    for node, m in ctx.manifests():
        if m.kind in ("image", "index") and "mediaType" not in m.data and not _docker_shaped(m):
            yield Hit(node, "mediaType", f"no top-level mediaType (served as {m.declared_type or 'an unknown type'})")


def _docker_shaped(m: mf.Manifest) -> bool:
    """Served as a Docker type, or an image manifest whose config is the Docker config type."""
    config_type = m.config.media_type if m.config else None
    return m.declared_type in (mf.DOCKER_MANIFEST, mf.DOCKER_LIST) or config_type == mf.DOCKER_CONFIG


@rule(
    "docker-missing-media-type",
    severity="error",
    sources=[
        "https://github.com/distribution/distribution/blob/v3.1.1/manifest/schema2/manifest.go",
        "https://github.com/quay/quay/blob/v3.18.0/image/docker/schema2/manifest.py",
        "https://github.com/distribution/distribution/blob/main/docs/content/spec/manifest-v2-2.md",
    ],
    fix="skopeo copy --format v2s2 {source} {target} (writes the mediaType), or --format oci",
    passing={"top": DOCKER_IMAGE},
    failing={"top": {k: v for k, v in DOCKER_IMAGE.items() if k != "mediaType"}},
)
def docker_missing_media_type(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A Docker v2 schema 2 manifest or manifest list has no top-level `mediaType`.

    Unlike OCI, Docker's schema 2 requires the field: distribution answers MANIFEST_INVALID ("mediaType in
    manifest should be 'application/vnd.docker.distribution.manifest.v2+json' not ''") and Quay's schema
    requires it.
    """
    for node, m in ctx.manifests():
        if m.kind in ("image", "index") and "mediaType" not in m.data and _docker_shaped(m):
            expected = mf.DOCKER_LIST if m.kind == "index" else mf.DOCKER_MANIFEST
            yield Hit(node, "mediaType", f"no top-level mediaType; a Docker {m.kind} must say {expected}")


def _type_path(node: mf.Node) -> str:
    """Where a node's type is written: its own `mediaType`, else the descriptor that points at it."""
    return "mediaType" if node.manifest is not None and node.manifest.media_type else ""


_KNOWN_MANIFEST_TYPES = sorted(mf.MANIFEST_TYPES - {mf.OCI_ARTIFACT})


@rule(
    "manifest-type-not-accepted",
    severity="error",
    params={"accepted": _KNOWN_MANIFEST_TYPES},
    sources=[
        "https://github.com/distribution/distribution/blob/v3.1.1/manifests.go",
        "https://github.com/project-zot/zot/blob/v2.1.20/pkg/compat/compat.go",
        "https://github.com/goharbor/harbor/issues/10952",
    ],
    fix="convert to a type the registry takes: skopeo copy --all --format oci {source} {target} "
    "(or --format v2s2 for a registry that takes only Docker types)",
    passing={"top": OCI_IMAGE},
    failing={"top": {**OCI_IMAGE, "mediaType": "application/vnd.acme.manifest.v1+json"}},
)
def manifest_type_not_accepted(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A manifest in the tree has a media type the registry does not take.

    Registries pick the parser by media type. An unknown type is refused (distribution v3: "unsupported manifest
    media type", Quay: 415), zot without Docker compatibility refuses Docker v2s2 manifests and lists, and Harbor
    1.x, Artifactory 6.x and Quay before 3.6 did not take OCI types. `accepted` lists the types the registry
    takes; the removed OCI artifact manifest has its own rule (oci-artifact-manifest).
    """
    accepted = set(params.get("accepted", ()))
    for node, t in typed_nodes(ctx):
        if t not in accepted and t != mf.OCI_ARTIFACT:
            where = f"entry {node.descriptor.digest}" if node.descriptor else "the manifest"
            takes = ", ".join(sorted(a.removeprefix("application/vnd.") for a in accepted))
            yield Hit(node, _type_path(node), f"{where} is {t}; the registry takes {takes}")


@rule(
    "oci-artifact-manifest",
    severity="warning",
    sources=[
        "https://github.com/oras-project/oras/issues/654",
        "https://github.com/opencontainers/image-spec/blob/main/manifest.md",
        "https://github.com/project-zot/zot/pull/1359",
    ],
    fix="write an image manifest with artifactType instead (oras push --image-spec v1.1)",
    passing={"top": {**OCI_IMAGE, "artifactType": "application/vnd.acme.sbom+json"}},
    failing={
        "top": {
            "schemaVersion": 2,
            "mediaType": mf.OCI_ARTIFACT,
            "artifactType": "application/vnd.acme.sbom+json",
            "blobs": [{"mediaType": "application/json", "digest": "%{}", "size": "%{}"}],
        }
    },
)
def oci_artifact_manifest(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The manifest is an OCI artifact manifest (application/vnd.oci.artifact.manifest.v1+json).

    The artifact manifest was dropped from image-spec 1.1.0 before release; ORAS and notation moved to image
    manifests with `artifactType`. Quay, distribution, Harbor (UNSUPPORTED), zot 2.0+ and ECR refuse it; only ACR
    took it, as a preview.
    """
    for node, t in typed_nodes(ctx):
        if t == mf.OCI_ARTIFACT:
            where = f"entry {node.descriptor.digest}" if node.descriptor else "the manifest"
            yield Hit(node, _type_path(node), f"{where} is an OCI artifact manifest ({t})")


def parameterized(m: mf.Manifest) -> Iterator[tuple[str, str]]:
    """(path, value) of every media type or artifactType in the document that carries `;` parameters."""
    fields = [("mediaType", m.data.get("mediaType")), ("artifactType", m.data.get("artifactType"))]
    for d in own_descriptors(m):
        fields += [(f"{d.path}.{key}", d.data.get(key)) for key in ("mediaType", "artifactType")]
    for path, value in fields:
        if isinstance(value, str) and ";" in value and mf.MEDIA_TYPE_RE.match(value.split(";")[0].strip()):
            yield path, value


@rule(
    "media-type-parameters",
    severity="warning",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/schema/defs-descriptor.json",
        "https://github.com/sigstore/sigstore-js/pull/1058",
        "https://github.com/sigstore/sigstore-js/commit/b16d990059cff777cc3d9ac1dbe0256818710d39",
    ],
    fix="drop the parameters and put the version in the type itself (application/vnd.dev.sigstore.bundle.v0.3+json)",
    passing={"top": {**OCI_IMAGE, "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json"}},
    failing={"top": {**OCI_IMAGE, "artifactType": "application/vnd.dev.sigstore.bundle+json;version=0.2"}},
)
def media_type_parameters(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A media type carries `;` parameters (`application/vnd.dev.sigstore.bundle+json;version=0.2`).

    The image-spec's descriptor schema allows only `type/subtype`, so registries that validate against it (zot)
    refuse the manifest, and ECR refused such types until 2024 (sigstore-js special-cased it). The `schema` rule
    leaves these values to this rule.
    """
    for node, m in ctx.manifests():
        for path, value in parameterized(m):
            yield Hit(node, path, f"{path} is {value!r}: media types with parameters are not type/subtype")
