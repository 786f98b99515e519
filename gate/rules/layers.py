"""Layers and limits: compression, foreign layers, how many layers, how many bytes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, rule
from gate.rules.common import DOCKER_LAYER, blob, docker_image, oci_image, parts

_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_ZSTD = blob("application/vnd.oci.image.layer.v1.tar+zstd", "zstd layer")
_TAR = blob("application/vnd.oci.image.layer.v1.tar", "tar layer")
_FOREIGN = blob(
    mf.DOCKER_FOREIGN_LAYER,
    "windows base layer",
    urls=["https://foreign.example.org/v2/windows/servercore/blobs/sha256:0000"],
)


def _layers(ctx: Context) -> Iterator[tuple[mf.Node, mf.Descriptor]]:
    for node, m, d in parts(ctx):
        if d is not m.config:
            yield node, d


@rule(
    "zstd-layers",
    severity="info",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/layer.md#zstd-media-types",
        "https://github.com/moby/moby/pull/41759",
        "https://docs.docker.com/engine/release-notes/23.0/",
    ],
    fix="skopeo copy --all --dest-compress-format gzip {source} {target}",
    passing={"top": oci_image()},
    failing={"top": oci_image(layers=[_ZSTD])},
)
def zstd_layers(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A layer is zstd-compressed (`+zstd`).

    zstd is an OCI layer type since image-spec 1.0.2; registries store it, but Docker Engine before 23.0 cannot
    pull it ("unsupported layer compression") and older containerd and podman cannot either. (Docker-typed zstd
    inside a v2s2 manifest is docker-v2s2-undefined-types.)
    """
    for node, d in _layers(ctx):
        if (d.media_type or "").endswith("+zstd"):
            yield Hit(node, f"{d.path}.mediaType", f"layer {d.digest} is zstd ({d.media_type})")


@rule(
    "uncompressed-layers",
    severity="info",
    sources=["https://github.com/opencontainers/image-spec/blob/main/layer.md"],
    fix="skopeo copy --all --dest-compress --dest-compress-format gzip {source} {target}",
    passing={"top": oci_image()},
    failing={"top": oci_image(layers=[_TAR])},
)
def uncompressed_layers(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A layer is an uncompressed tar (`application/vnd.oci.image.layer.v1.tar`).

    Valid, but every pull moves the full size, layer size limits (ECR 52,000 MiB, ECR Public 10,000 MiB) are met
    sooner, and Docker's v2s2 format has no uncompressed type, so converting to v2s2 fails.
    """
    for node, d in _layers(ctx):
        if d.media_type in ("application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar"):
            yield Hit(node, f"{d.path}.mediaType", f"layer {d.digest} is uncompressed ({d.media_type})")


@rule(
    "foreign-layers",
    severity="warning",
    params={"allowed_url_pattern": "^$"},
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/layer.md#non-distributable-layers",
        "https://github.com/distribution/distribution/blob/v3.1.1/registry/handlers/app.go",
        "https://github.com/podman-container-tools/skopeo/issues/545",
    ],
    fix="copy the layer content too (skopeo copy --all, which uploads foreign layers; dockerd: "
    "allow-nondistributable-artifacts), or allow the URLs on the registry (validation.manifests.urls.allow)",
    passing={"top": docker_image(layers=[DOCKER_LAYER])},
    failing={"top": docker_image(layers=[_FOREIGN, DOCKER_LAYER])},
)
def foreign_layers(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A layer is foreign / non-distributable, or names `urls` to fetch it from.

    Windows base layers used to be foreign: the registry never gets the blob, only URLs. distribution refuses
    such manifests by default since 2.7 (MANIFEST_BLOB_UNKNOWN, "invalid URL on layer"); Docker Hub accepts them
    only for Windows base layers. Non-distributable types are deprecated in image-spec 1.1. A layer whose every
    URL matches `allowed_url_pattern` (a regular expression, like distribution's validation.manifests.urls.allow)
    is fine.
    """
    allowed = re.compile(str(params.get("allowed_url_pattern", "^$")))
    for node, d in _layers(ctx):
        t = d.media_type or ""
        if d.urls and all(allowed.search(u) for u in d.urls):
            continue
        if t == mf.DOCKER_FOREIGN_LAYER or ".nondistributable." in t or d.urls:
            where = f" with urls {', '.join(d.urls)}" if d.urls else ""
            yield Hit(node, d.path, f"layer {d.digest} is foreign ({t}){where}")


@rule(
    "layer-count",
    severity="warning",
    params={"max_layers": 127},
    sources=["https://github.com/openai/tart/issues/890", "https://github.com/nuonco/nuon/pull/2348"],
    fix="squash layers (docker buildx build with fewer RUN steps, or --squash), then push again",
    passing={"top": oci_image()},
    failing={"top": oci_image(layers=[blob(_GZIP, f"layer {i}") for i in range(128)])},
)
def layer_count(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An image manifest has more layers than `max_layers`.

    ECR refuses a manifest over its per-image cap with 405 UNSUPPORTED "Limit on number of layers per image
    exceeded" (the cap is undocumented: 127 in 2016, measured at 500 since); overlay storage drivers cap the
    depth of a container's lower directories too.
    """
    limit = int(params.get("max_layers", 127))
    for node, m in ctx.images():
        if len(m.layers) > limit:
            yield Hit(node, "layers", f"{len(m.layers)} layers, over the limit of {limit}")


@rule(
    "layer-size",
    severity="error",
    params={"max_bytes": 52000 * 1024 * 1024},
    sources=[
        "https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html",
        "https://docs.aws.amazon.com/AmazonECR/latest/public/public-service-quotas.html",
    ],
    fix="split the layer (fewer files per RUN step, multi-stage builds), then push again",
    passing={"top": oci_image()},
    failing={"top": oci_image(layers=[{**blob(_GZIP, "big layer"), "size": 52000 * 1024 * 1024 + 1}])},
)
def layer_size(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A layer is larger than `max_bytes` (as its descriptor says).

    ECR takes layers of up to 52,000 MiB and ECR Public up to 10,000 MiB; the upload of a larger one is refused.
    """
    limit = int(params.get("max_bytes", 52000 * 1024 * 1024))
    for node, d in _layers(ctx):
        if d.size is not None and d.size > limit:
            yield Hit(node, f"{d.path}.size", f"layer {d.digest} is {d.size} bytes, over the limit of {limit}")


@rule(
    "manifest-size",
    severity="warning",
    params={"max_bytes": 4 * 1024 * 1024},
    sources=[
        "https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests",
        "https://github.com/distribution/distribution/blob/v3.1.1/registry/handlers/manifests.go",
        "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutImage.html",
    ],
    fix="split the index or drop annotations so that each manifest stays under the limit",
    passing={"top": oci_image()},
    failing={"top": oci_image(annotations={"padding": "x" * (4 * 1024 * 1024)})},
)
def manifest_size(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A manifest is larger than `max_bytes`.

    Registries cap the manifest body: distribution and zot at 4 MiB (MANIFEST_INVALID or 413), ECR at 4,194,304
    bytes, Harbor at 4 MiB. The distribution-spec asks registries to take at least 4 MB. (The gate itself reads
    manifests up to 4.5 MiB and refuses larger ones.)
    """
    limit = int(params.get("max_bytes", 4 * 1024 * 1024))
    for node, m in ctx.manifests():
        if m.size > limit:
            yield Hit(node, "", f"{m.size} bytes, over the limit of {limit}")
