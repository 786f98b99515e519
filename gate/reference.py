"""Image references, normalised the way docker and containers/image do it.

`python:3.12` is `docker.io/library/python:3.12`; a first component with a `.` or `:`, or `localhost`, is a host.
Parsing is deliberately lenient about the repository's characters: whether a *target* name is acceptable to a
given registry is a rule's business (a finding), not a parse error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gate.errors import UsageError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HOST = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")
_BAD = re.compile(r"[\s\x00-\x1f\x7f\"'`$\\;|&<>(){}*?!]")


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.host, self.repository, None, digest)


def parse(text: str) -> Reference:
    """Parse `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`, with or without a `docker://` prefix."""
    raw = text
    if text.startswith("docker://"):
        text = text[len("docker://") :]
    if not text or text.startswith("-"):
        raise UsageError(f"{raw!r} is not an image reference", "write it as HOST/REPOSITORY:TAG")
    if _BAD.search(text) or len(text) > 4096:
        raise UsageError(
            f"{raw!r} is not an image reference (spaces, quotes or shell characters)",
            "write it as HOST/REPOSITORY:TAG",
        )
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise UsageError(f"{raw!r} has a malformed digest {digest!r}", "write it as sha256:<64 hex digits>")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        if not tag:
            raise UsageError(f"{raw!r} has an empty tag", "write it as HOST/REPOSITORY:TAG")
    parts = text.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or parts[0].startswith("[")):
        host, path = parts[0], "/".join(parts[1:])
        if not _HOST.match(host):
            raise UsageError(f"{raw!r} has an invalid registry host {host!r}", "write it as HOST[:PORT]/REPOSITORY")
    else:
        host, path = DOCKER_HUB, text
    if host.lower() in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    if not path or any(not p for p in path.split("/")):
        raise UsageError(f"{raw!r} has an empty repository path component", "write it as HOST/REPOSITORY:TAG")
    return Reference(host, path, tag, digest)
