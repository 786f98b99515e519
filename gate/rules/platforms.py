"""Platforms: are the index entries' os, architecture, variant and os.version values ones a platform matcher knows?"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, rule
from gate.rules.common import AMD64, ARM64, entry, image_entries, index_doc, oci_image

# GOOS / GOARCH values (go tool dist list), which the image-spec says platform values SHOULD use.
GOOS = [
    "aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd",
    "plan9", "solaris", "wasip1", "windows",
]  # fmt: skip
GOARCH = [
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le",
    "riscv64", "s390x", "wasm",
]  # fmt: skip
# Names seen in the wild for GOARCH values (Docker Hub namespaces, uname -m, Debian architectures).
ALIASES = {
    "arm64v8": "arm64 (variant v8)", "aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64", "i386": "386",
    "i686": "386", "arm32v7": "arm (variant v7)", "arm32v6": "arm (variant v6)", "armhf": "arm (variant v7)",
    "armel": "arm (variant v5)", "armv7": "arm (variant v7)", "armv7l": "arm (variant v7)", "ppc64el": "ppc64le",
}  # fmt: skip
VARIANTS = {"arm": r"v[5-8]", "arm64": r"v8(\.[0-9])?|v9(\.[0-9])?", "amd64": r"v[1-4]"}
_SPEC = "https://github.com/opencontainers/image-spec/blob/main/image-index.md#platform-variants"
_PLATFORM_FIX = "rebuild or re-annotate with a GOOS/GOARCH platform: docker buildx imagetools create, or "
_PLATFORM_FIX += "podman manifest annotate --os OS --arch ARCH --variant VARIANT LIST IMAGE@DIGEST"


def _platforms(ctx: Context) -> Iterator[tuple[mf.Node, mf.Descriptor, mf.Platform]]:
    for node, d in image_entries(ctx):
        if d.platform is not None:
            yield node, d, d.platform


def _with(platform: dict[str, str]) -> dict[str, Any]:
    return {"top": index_doc(entry("a", platform=platform)), "children": {"a": oci_image()}}


@rule(
    "platform-unknown-os",
    severity="warning",
    params={"known": GOOS},
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/image-index.md",
        "https://go.dev/doc/install/source#environment",
    ],
    fix=_PLATFORM_FIX,
    passing=_with(AMD64),
    failing=_with({"os": "Linux", "architecture": "amd64"}),
)
def platform_unknown_os(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An entry's `platform.os` is not a GOOS value.

    The image-spec says `os` SHOULD be a GOOS value. Platform matchers (containerd, containers/image) compare
    exact strings, so an entry for `Linux` or `ubuntu` is never pulled.
    """
    known = set(params.get("known", ()))
    for node, d, p in _platforms(ctx):
        if p.os is not None and p.os not in known:
            yield Hit(node, f"{d.path}.platform.os", f"entry {d.digest} has os {p.os!r}, which is not a GOOS value", d)


@rule(
    "platform-unknown-architecture",
    severity="warning",
    params={"known": GOARCH},
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/image-index.md",
        "https://github.com/podman-container-tools/buildah/issues/3604",
    ],
    fix=_PLATFORM_FIX,
    passing=_with(ARM64),
    failing=_with({"os": "linux", "architecture": "arm64v8"}),
)
def platform_unknown_architecture(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An entry's `platform.architecture` is not a GOARCH value (arm64v8, x86_64, aarch64).

    `arm64v8` is a Docker Hub namespace, not an architecture: written as one, no arm64 machine matches the entry
    (it wants arm64 with variant v8). quay.io refused such a list in 2021; the cause was never confirmed.
    """
    known = set(params.get("known", ()))
    for node, d, p in _platforms(ctx):
        if p.architecture is not None and p.architecture not in known:
            hint = f" (did you mean {ALIASES[p.architecture]}?)" if p.architecture in ALIASES else ""
            message = f"entry {d.digest} has architecture {p.architecture!r}, which is not a GOARCH value{hint}"
            yield Hit(node, f"{d.path}.platform.architecture", message, d)


@rule(
    "platform-bad-variant",
    severity="warning",
    sources=[_SPEC, "https://github.com/containerd/platforms/blob/main/platforms.go"],
    fix=_PLATFORM_FIX,
    passing=_with(ARM64),
    failing=_with({"os": "linux", "architecture": "arm64", "variant": "armv8"}),
)
def platform_bad_variant(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """An entry's `platform.variant` is not one its architecture has (arm: v5-v8, arm64: v8/v9, amd64: v1-v4).

    Variants are compared as strings after normalisation, so `armv8` or `8` for arm64 never matches a machine.
    """
    for node, d, p in _platforms(ctx):
        pattern = VARIANTS.get(p.architecture or "")
        if p.variant is not None and pattern is not None and not re.fullmatch(pattern, p.variant):
            expected = VARIANTS[p.architecture or ""].replace("(\\.[0-9])?", "").replace("|", " or ")
            message = f"entry {d.digest} has variant {p.variant!r} for {p.architecture}; expected {expected}"
            yield Hit(node, f"{d.path}.platform.variant", message, d)


@rule(
    "platform-arm-no-variant",
    severity="warning",
    sources=[_SPEC, "https://github.com/containerd/platforms/blob/main/database.go"],
    fix=_PLATFORM_FIX,
    passing=_with({"os": "linux", "architecture": "arm", "variant": "v7"}),
    failing=_with({"os": "linux", "architecture": "arm"}),
)
def platform_arm_no_variant(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A 32-bit arm entry has no `variant`.

    arm v6 and v7 images do not run on each other's machines; without a variant the matcher cannot tell them
    apart, and a v7 machine may pull a v6-only image or the reverse.
    """
    for node, d, p in _platforms(ctx):
        if p.architecture == "arm" and not p.variant:
            yield Hit(node, f"{d.path}.platform", f"entry {d.digest} is arm with no variant (v6, v7?)", d)


@rule(
    "windows-no-os-version",
    severity="warning",
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/image-index.md",
        "https://learn.microsoft.com/virtualization/windowscontainers/deploy-containers/version-compatibility",
    ],
    fix="set os.version (e.g. 10.0.20348.2655) on the entry: docker buildx imagetools create, or "
    "docker manifest annotate --os-version",
    passing=_with({"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2655"}),
    failing=_with({"os": "windows", "architecture": "amd64"}),
)
def windows_no_os_version(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A Windows entry has no `os.version`.

    Windows hosts pick the entry whose os.version matches their build; process-isolated containers need the
    same build. Without it a host may pull an image it cannot run.
    """
    for node, d, p in _platforms(ctx):
        if p.os == "windows" and not p.os_version:
            yield Hit(node, f"{d.path}.platform", f"Windows entry {d.digest} has no os.version", d)
