"""The only place that runs skopeo.

Every call is an argv list (never a shell), has a timeout, and is retried a bounded number of times when the
failure is transient (rate limit, 5xx, network, timeout). Failures are classified from stderr, because the
documented exit code 2 for "not found" exists only from skopeo 1.16 and GitHub's runners ship 1.4.1 and 1.13.3.
Credentials reach skopeo only through an auth file (`--authfile`, `REGISTRY_AUTH_FILE`, or docker's config),
never through argv.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gate.errors import InspectError, UsageError

# kind -> (stderr patterns, what the user should do). Checked in order: the first match wins.
_KINDS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "bad-reference",
        re.compile(r"invalid reference format|repository name must|Invalid image name|invalid (?:tag|digest)", re.I),
        "write the reference as HOST/REPOSITORY:TAG or HOST/REPOSITORY@sha256:DIGEST",
    ),
    (
        "rate-limit",
        re.compile(r"toomanyrequests|too many requests|rate limit|\b429\b", re.I),
        "wait and retry, or authenticate (--authfile) to raise the registry's pull limit",
    ),
    (
        "auth",
        re.compile(
            r"unauthorized|authentication required|requested access to the resource is denied|denied:|"
            r"\b401\b|\b403\b|forbidden|invalid username/password",
            re.I,
        ),
        "log in first (skopeo login HOST, or pass --authfile FILE / set REGISTRY_AUTH_FILE)",
    ),
    (
        "not-found",
        re.compile(r"manifest unknown|name unknown|not found|\b404\b|no such image|does not exist", re.I),
        "check the repository and tag (skopeo list-tags docker://HOST/REPOSITORY lists the tags)",
    ),
    (
        "tls",
        re.compile(
            r"x509|certificate|tls:|server gave HTTP response to HTTPS client|first record does not look like a TLS",
            re.I,
        ),
        "pass --cert-dir DIR with the registry's CA, or --no-tls-verify for a plain-HTTP or self-signed registry",
    ),
    (
        "network",
        re.compile(
            r"connection refused|no such host|i/o timeout|network is unreachable|connection reset|"
            r"no route to host|timeout|unexpected EOF|\bEOF\b|TLS handshake timeout|server misbehaving",
            re.I,
        ),
        "check that the registry host and port are right and reachable from here",
    ),
    (
        "server",
        re.compile(r"\b50[0-4]\b|internal server error|bad gateway|service unavailable|gateway timeout", re.I),
        "the registry answered with a server error; retry later",
    ),
]
TRANSIENT = {"rate-limit", "network", "server", "timeout"}
_FATAL_MSG = re.compile(r'level=fatal msg="(.*)"\s*$', re.S)


def classify(stderr: str) -> tuple[str, str]:
    """The failure kind and the fix for skopeo's stderr (`error` when nothing matches)."""
    for kind, pattern, fix in _KINDS:
        if pattern.search(stderr):
            return kind, fix
    return "error", "run the same skopeo command by hand to see the full message"


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "(no message)"
    match = _FATAL_MSG.search(line)
    if match:
        line = match.group(1).replace('\\"', '"')
    # skopeo repeats the reference it was given; keep the cause.
    line = re.sub(r'^Error parsing image name "[^"]*": ', "", line)
    return line[:300]


def check_reference(ref: str) -> None:
    """Refuse anything that skopeo could read as a flag, or that holds control characters."""
    if not ref or ref.startswith("-"):
        raise UsageError(f"{ref!r} is not an image reference (it starts with '-')", "put the image reference first")
    if any(ord(c) < 32 or c == "\x7f" for c in ref):
        raise UsageError(f"{ref!r} contains control characters", "pass a plain image reference")


@dataclass(frozen=True)
class Options:
    """What the user passed that changes how skopeo reaches the registry."""

    tls_verify: bool | None = None
    authfile: str | None = None
    cert_dir: str | None = None
    timeout: float = 60.0
    retries: int = 2
    backoff: float = 0.5

    def registry_flags(self, prefix: str = "") -> list[str]:
        """`--tls-verify`, `--authfile`, `--cert-dir` for one side (`src-`/`dest-` in copy)."""
        flags: list[str] = []
        if self.tls_verify is not None:
            flags.append(f"--{prefix}tls-verify={'true' if self.tls_verify else 'false'}")
        if self.authfile:
            flags.append(f"--{prefix}authfile={self.authfile}")
        if self.cert_dir:
            flags.append(f"--{prefix}cert-dir={self.cert_dir}")
        return flags


Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[bytes]"]


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@dataclass
class Skopeo:
    options: Options = field(default_factory=Options)
    binary: str = "skopeo"
    runner: Runner = _run
    calls: int = 0

    def _call(self, args: list[str], what: str, timeout: float | None = None) -> bytes:
        argv = [self.binary, *args]
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            try:
                proc = self.runner(argv, timeout or self.options.timeout)
            except FileNotFoundError:
                raise InspectError(
                    f"skopeo is not installed (no {self.binary!r} on PATH)",
                    "install it: sudo apt-get install -y skopeo",
                    kind="skopeo-missing",
                ) from None
            except subprocess.TimeoutExpired:
                kind, message, fix = (
                    "timeout",
                    f"no answer in {timeout or self.options.timeout:g}s",
                    "check that the registry is reachable, or raise --timeout",
                )
            else:
                if proc.returncode == 0:
                    return proc.stdout
                stderr = proc.stderr.decode("utf-8", "replace")
                kind, fix = classify(stderr)
                message = _last_line(stderr)
            if kind not in TRANSIENT or attempt > self.options.retries:
                raise InspectError(f"cannot inspect {what}: {kind}: {message}", fix, kind=kind)
            time.sleep(self.options.backoff * 2 ** (attempt - 1))

    def version(self) -> str | None:
        """The installed skopeo's version ("1.9.3"), or None when it is missing or broken."""
        try:
            proc = self.runner([self.binary, "--version"], 10)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return None
        match = re.search(rb"version\s+(\d+\.\d+(?:\.\d+)?)", proc.stdout)
        return match.group(1).decode() if match else None

    def inspect_raw(self, ref: str) -> bytes:
        """The manifest bytes exactly as the registry stores them (`skopeo inspect --raw docker://REF`)."""
        check_reference(ref)
        return self._call(["inspect", "--raw", *self.options.registry_flags(), f"docker://{ref}"], ref)

    def list_tags(self, repository: str) -> list[str]:
        import json

        check_reference(repository)
        out = self._call(["list-tags", *self.options.registry_flags(), f"docker://{repository}"], repository)
        tags = json.loads(out).get("Tags") or []
        return [str(t) for t in tags]

    def copy_argv(self, source: str, dest: str, oci: bool) -> list[str]:
        """The argv of `skopeo copy --all [--format oci] SRC DEST` with our registry options on both sides."""
        for ref in (source, dest):
            check_reference(ref.split(":", 1)[-1])
        argv = [self.binary, "copy", "--all"]
        if oci:
            argv += ["--format", "oci"]
        if source.startswith("docker://"):
            argv += self.options.registry_flags("src-")
        argv += self.options.registry_flags("dest-")
        return [*argv, source, dest]

    def copy(self, source: str, dest: str, oci: bool) -> None:
        argv = self.copy_argv(source, dest, oci)
        self._call(argv[1:], f"{source} -> {dest}", timeout=max(600.0, self.options.timeout))
