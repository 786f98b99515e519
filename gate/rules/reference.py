"""The target reference itself: is the repository path, tag or digest one the registry takes?

These rules read `ctx.target` (the parsed `--target` reference) and find nothing when there is none; their
examples name the target under "target". Digest algorithms are checked in the manifest's descriptors too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from gate import manifest as mf
from gate.rules import Context, Hit, rule
from gate.rules.common import descriptors, oci_image

# github.com/distribution/reference: path components, and the tag grammar.
COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DIST_REF = "https://github.com/distribution/reference/blob/main/reference.go"


def _root(ctx: Context) -> mf.Node:
    return ctx.image.nodes[0]


@rule(
    "repository-name",
    severity="error",
    sources=[_DIST_REF, "https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests"],
    fix="push to a lowercase path: each component [a-z0-9] words joined by one '.', '_', '__' or dashes",
    passing={"top": oci_image(), "target": "registry.example.org/acme/app:1"},
    failing={"top": oci_image(), "target": "registry.example.org/Acme/My_App_:1"},
)
def repository_name(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A component of the target repository path is not lowercase letters and digits joined by `.`, `_`, `-`.

    The distribution-spec's name grammar is what every registry and client checks: docker answers "repository
    name must be lowercase", registries answer NAME_INVALID.
    """
    if ctx.target is None:
        return
    bad = [c for c in ctx.target.repository.split("/") if not COMPONENT.fullmatch(c)]
    if bad:
        message = f"repository {ctx.target.repository!r}: {', '.join(map(repr, bad))} is not a valid path component"
        yield Hit(_root(ctx), "", message)


@rule(
    "repository-depth",
    severity="error",
    params={"max_components": 2},
    sources=["https://github.com/docker/hub-feedback/issues/1404", "https://github.com/docker/roadmap/issues/367"],
    fix="push to NAMESPACE/REPOSITORY (e.g. docker.io/acme/app-tool instead of docker.io/acme/app/tool)",
    passing={"top": oci_image(), "target": "docker.io/acme/app:1"},
    failing={"top": oci_image(), "target": "docker.io/acme/team/app:1"},
)
def repository_depth(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The target repository path has more components than the registry takes (`max_components`).

    Docker Hub has exactly NAMESPACE/REPOSITORY: a deeper path cannot be created or pushed to.
    """
    limit = int(params.get("max_components", 2))
    if ctx.target is not None and len(ctx.target.repository.split("/")) > limit:
        message = f"repository {ctx.target.repository!r} has {len(ctx.target.repository.split('/'))} components"
        yield Hit(_root(ctx), "", f"{message}; at most {limit}")


@rule(
    "repository-length",
    severity="error",
    params={"min_length": 1, "max_length": 255},
    sources=[
        _DIST_REF,
        "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_Image.html",
        "https://docs.aws.amazon.com/AmazonECRPublic/latest/APIReference/API_Image.html",
    ],
    fix="push to a shorter (or longer) repository path",
    passing={"top": oci_image(), "target": "registry.example.org/acme/app:1"},
    failing={"top": oci_image(), "target": "registry.example.org/acme/" + "a" * 251 + ":1"},
)
def repository_length(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The target repository path is shorter than `min_length` or longer than `max_length` characters.

    distribution caps a name at 255 characters; ECR takes repository names of 2-256 characters and ECR Public
    2-205.
    """
    low, high = int(params.get("min_length", 1)), int(params.get("max_length", 255))
    if ctx.target is not None and not low <= len(ctx.target.repository) <= high:
        n = len(ctx.target.repository)
        yield Hit(_root(ctx), "", f"repository {ctx.target.repository!r} is {n} characters; {low}-{high} are allowed")


@rule(
    "tag-format",
    severity="error",
    params={"max_length": 128},
    sources=[_DIST_REF, "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutImage.html"],
    fix="use a tag of letters, digits, '_', '.' and '-' that does not start with '.' or '-'",
    passing={"top": oci_image(), "target": "registry.example.org/acme/app:v1.2.3"},
    failing={"top": oci_image(), "target": "registry.example.org/acme/app:-rc1"},
)
def tag_format(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """The target tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]*` or is longer than `max_length` characters.

    The distribution-spec allows 128 characters; ECR takes tags up to 300.
    """
    tag = ctx.target.tag if ctx.target is not None else None
    if tag is None:
        return
    limit = int(params.get("max_length", 128))
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", tag):
        yield Hit(_root(ctx), "", f"tag {tag!r} has characters outside [A-Za-z0-9_.-] or starts with '.' or '-'")
    elif len(tag) > limit:
        yield Hit(_root(ctx), "", f"tag is {len(tag)} characters; at most {limit}")


@rule(
    "digest-algorithm",
    severity="warning",
    params={"allowed": ["sha256", "sha512"]},
    sources=[
        "https://github.com/opencontainers/image-spec/blob/main/descriptor.md#registered-algorithms",
        "https://github.com/distribution/distribution/issues/4420",
        "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageIdentifier.html",
    ],
    fix="use sha256 digests (skopeo copy --digestfile; crane and buildx write sha256)",
    passing={"top": oci_image()},
    failing={
        "top": oci_image(config={"mediaType": mf.OCI_CONFIG, "digest": "sha384:" + "a" * 96, "size": 2}),
    },
)
def digest_algorithm(ctx: Context, params: Mapping[str, Any]) -> Iterator[Hit]:
    """A digest (the target's, or a descriptor's) uses an algorithm the registry does not take.

    The image-spec registers sha256 and sha512; registries know no others (sha384). distribution answers
    DIGEST_INVALID to sha512 manifests, ECR's image digests are sha256, and Quay computes sha256 only.
    """
    allowed = set(params.get("allowed", ()))
    expected = f"{' or '.join(sorted(allowed))} expected"
    if ctx.target is not None and ctx.target.digest:
        algorithm = ctx.target.digest.split(":")[0]
        if algorithm not in allowed:
            yield Hit(_root(ctx), "", f"the target digest is {algorithm}; {expected}")
    for node, d in descriptors(ctx):
        algorithm = (d.digest or "").split(":")[0]
        if d.digest and algorithm not in allowed:
            yield Hit(node, f"{d.path}.digest", f"{d.path} digest is {algorithm}; {expected}")
