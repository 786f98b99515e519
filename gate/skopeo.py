"""The only place that decides how skopeo runs. Its import-light half, gate/early.py, starts and stops the processes
(and can start the first call before the CLI loads, which this module then takes over).

Every call is an argv list (never a shell), has a timeout, and is retried a bounded number of times when the
failure is transient (rate limit, 5xx, network, timeout). Failures are classified from stderr, because the
documented exit code 2 for "not found" exists only from skopeo 1.16 and GitHub's runners ship 1.4.1 and 1.13.3.
Credentials reach skopeo only through an auth file (`--authfile`, `REGISTRY_AUTH_FILE`, docker's config, or a
private 0600 file written from REGISTRY_GATE_USERNAME / REGISTRY_GATE_PASSWORD and deleted after), never through argv.
An overall deadline bounds every call's timeout and every backoff sleep.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gate import early
from gate.errors import InspectError, UsageError

if TYPE_CHECKING:
    from gate.cache import Cache


def _status(codes: str) -> str:
    """An HTTP status in skopeo's words ("status code: 404", "received unexpected HTTP status: 500 ...",
    "404 (Not Found)"), never a bare number, which may be part of a tag or repository name (`app:1.404`)."""
    return rf"(?:status|code)[^0-9\n]{{0,24}}\b(?:{codes})\b|\b(?:{codes}) \(?(?-i:[A-Z][a-z]+)"


# kind -> (stderr pattern, case-insensitive, what the user should do). Checked in order: the first match wins.
# Compiled on first use: `registry-gate --version` imports this module and should not pay for them.
_KINDS: list[tuple[str, str, str]] = [
    (
        "bad-reference",
        (r"invalid reference format|repository name must|Invalid image name|invalid (?:tag|digest)"),
        "write the reference as HOST/REPOSITORY:TAG or HOST/REPOSITORY@sha256:DIGEST",
    ),
    (
        "too-large",
        r"exceeded maximum allowed size",
        "skopeo reads no manifest over 4 MiB, and no registry stores one: split the index, or drop annotations",
    ),
    (
        "rate-limit",
        (r"toomanyrequests|too many requests|rate limit|" + _status("429")),
        "wait and retry, or authenticate (--authfile) to raise the registry's pull limit",
    ),
    (
        "auth",
        (
            r"unauthorized|authentication required|requested access to the resource is denied|denied:|"
            r"forbidden|invalid username/password|" + _status("401|403")
        ),
        "log in first (skopeo login HOST, or pass --authfile FILE / set REGISTRY_AUTH_FILE)",
    ),
    (
        "not-found",
        (r"manifest unknown|name unknown|not found|no such image|does not exist|" + _status("404")),
        "check the repository and tag (skopeo list-tags docker://HOST/REPOSITORY lists the tags)",
    ),
    (
        "tls",
        (r"x509|certificate|tls:|server gave HTTP response to HTTPS client|first record does not look like a TLS"),
        "pass --cert-dir DIR with the registry's CA, or --no-tls-verify for a plain-HTTP or self-signed registry",
    ),
    (
        "network",
        (
            r"connection refused|no such host|i/o timeout|network is unreachable|connection reset|"
            r"no route to host|timeout|unexpected EOF|\bEOF\b|TLS handshake timeout|server misbehaving"
        ),
        "check that the registry host and port are right and reachable from here",
    ),
    (
        "server",
        (r"internal server error|bad gateway|service unavailable|gateway timeout|" + _status("50[0-4]")),
        "the registry answered with a server error; retry later",
    ),
]
TRANSIENT = {"network", "server", "timeout"}
"""Retried here. A rate limit is not: skopeo (containers/image) already tries a 429 up to 5 times, with
exponential backoff honouring Retry-After (about 30 s without it), so retrying again would multiply that wait."""
_FATAL_MSG = r'level=fatal msg="(.*)"\s*$'


def classify(stderr: str) -> tuple[str, str]:
    """The failure kind and the fix for skopeo's stderr (`error` when nothing matches)."""
    for kind, pattern, fix in _KINDS:
        if re.search(pattern, stderr, re.I):
            return kind, fix
    return "error", "run the same skopeo command by hand to see the full message"


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "(no message)"
    match = re.search(_FATAL_MSG, line, re.S)
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
    deadline: float | None = None
    """An absolute `time.monotonic()` after which no call starts and running calls are cut short."""

    def registry_flags(self, prefix: str = "") -> list[str]:
        """`--tls-verify`, `--authfile`, `--cert-dir` for one side (`src-`/`dest-` in copy)."""
        return early.registry_flags(self.tls_verify, self.authfile, self.cert_dir, prefix)


Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[bytes]"]


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    started = early.take(list(argv)) or early.Started(list(argv))
    result = started.wait(timeout)
    if result is None:
        raise subprocess.TimeoutExpired(list(argv), timeout)
    return subprocess.CompletedProcess(list(argv), *result)


def _deadline_error(what: str) -> InspectError:
    return InspectError(
        f"cannot inspect {what}: deadline: the --deadline ran out",
        "raise --deadline or check fewer sources",
        "deadline",
    )


@dataclass
class Skopeo:
    options: Options = field(default_factory=Options)
    binary: str = "skopeo"
    runner: Runner = _run
    calls: int = 0
    jobs: int | None = None
    """At most this many skopeo processes at once, however many threads ask (None: no limit)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _slots: threading.BoundedSemaphore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.jobs is not None:
            self._slots = threading.BoundedSemaphore(self.jobs)

    def _remaining(self) -> float | None:
        return None if self.options.deadline is None else self.options.deadline - time.monotonic()

    def _run_one(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        if self._slots is None:
            return self.runner(argv, timeout)
        with self._slots:
            return self.runner(argv, timeout)

    def _call(self, args: list[str], what: str, timeout: float | None = None) -> bytes:
        argv = [self.binary, *args]
        attempt = 0
        while True:
            attempt += 1
            limit = timeout or self.options.timeout
            remaining = self._remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise _deadline_error(what)
                limit = min(limit, remaining)
            with self._lock:
                self.calls += 1
            try:
                proc = self._run_one(argv, limit)
            except FileNotFoundError:
                raise InspectError(
                    f"skopeo is not installed (no {self.binary!r} on PATH)",
                    "install it: sudo apt-get install -y skopeo",
                    kind="skopeo-missing",
                ) from None
            except subprocess.TimeoutExpired:
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    raise _deadline_error(what) from None
                kind, message, fix = (
                    "timeout",
                    f"no answer in {limit:g}s",
                    "check that the registry is reachable, or raise --timeout",
                )
            else:
                if proc.returncode == 0:
                    return proc.stdout
                stderr = proc.stderr.decode("utf-8", "replace")
                kind, fix = classify(stderr)
                message = _last_line(stderr)
            pause = self.options.backoff * 2 ** (attempt - 1)
            remaining = self._remaining()
            if kind not in TRANSIENT or attempt > self.options.retries or (remaining is not None and remaining < pause):
                raise InspectError(f"cannot inspect {what}: {kind}: {message}", fix, kind=kind)
            time.sleep(pause)

    def version(self, cache: Cache | None = None) -> str | None:
        """The installed skopeo's version ("1.9.3"), or None when it is missing or broken.

        With a cache, the answer is remembered per binary (path, size, mtime), which saves a process start.
        """
        key = None
        if cache is not None:
            known, key = cache.skopeo_version(self.binary)
            if known is not None:
                return known
            if key is None:
                return None
        try:
            proc = self.runner([self.binary, "--version"], 10)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return None
        match = re.search(rb"version\s+(\d+\.\d+(?:\.\d+)?)", proc.stdout)
        version = match.group(1).decode() if match else None
        if cache is not None and key is not None and version is not None:
            cache.remember_skopeo_version(key, version)
        return version

    def inspect_raw(self, ref: str) -> bytes:
        """The manifest bytes exactly as the registry stores them (`skopeo inspect --raw docker://REF`)."""
        check_reference(ref)
        return self._call(early.inspect_argv(ref, self.options.registry_flags(), self.binary)[1:], ref)

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


USERNAME_ENV = early.USERNAME_ENV
PASSWORD_ENV = early.PASSWORD_ENV
REGISTRY_ENV = "REGISTRY_GATE_REGISTRY"


def env_credentials(hosts: set[str]) -> tuple[str, str, str] | None:
    """(host, username, password) from the environment, or None when no username/password is set.

    The credentials go to one registry only: REGISTRY_GATE_REGISTRY, or the only registry host among the sources.
    """
    user, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if not user and not password:
        return None
    host = os.environ.get(REGISTRY_ENV)
    if not hosts and not host:
        return None  # no registry source: nothing to log in to
    if not user or not password:
        missing = USERNAME_ENV if not user else PASSWORD_ENV
        raise UsageError(f"{missing} is not set but its partner is", f"set both {USERNAME_ENV} and {PASSWORD_ENV}")
    if not host:
        if len(hosts) != 1:
            raise UsageError(
                f"{USERNAME_ENV} is set and the sources name {len(hosts)} registries",
                f"set {REGISTRY_ENV}=HOST to say which registry the credentials belong to",
            )
        host = next(iter(hosts))
    return host, user, password


@contextmanager
def private_authfile(host: str, user: str, password: str, base: str | None = None) -> Iterator[str]:
    """A 0600 auth file (containers-auth.json) in a private 0700 folder holding `host`'s credentials, deleted after.

    Entries of `base` (the user's --authfile or REGISTRY_AUTH_FILE) for other hosts are kept, so one run can still
    reach them.
    """
    import base64
    import json
    import shutil
    import tempfile

    auths: dict[str, object] = {}
    if base:
        try:
            loaded = json.loads(Path(base).read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the auth file {base}: {exc}", "pass a containers-auth.json file") from None
        if isinstance(loaded, dict) and isinstance(loaded.get("auths"), dict):
            auths.update(loaded["auths"])
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    auths[host] = {"auth": token}
    folder = tempfile.mkdtemp(prefix="registry-gate-auth-")
    try:
        path = os.path.join(folder, "auth.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": auths}, handle)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _base_authfile(options: Options) -> str | None:
    """The auth file skopeo would have read: --authfile, REGISTRY_AUTH_FILE, else docker's config if present."""
    if options.authfile or os.environ.get("REGISTRY_AUTH_FILE"):
        return options.authfile or os.environ.get("REGISTRY_AUTH_FILE")
    docker = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    return docker if os.path.isfile(docker) else None


@contextmanager
def session(options: Options, hosts: set[str], jobs: int | None = None) -> Iterator[Skopeo]:
    """A Skopeo for one run; credentials from the environment go through a private auth file for its duration."""
    creds = env_credentials(hosts)
    if creds is None:
        yield Skopeo(options, jobs=jobs)
        return
    host, user, password = creds
    with private_authfile(host, user, password, _base_authfile(options)) as path:
        yield Skopeo(replace(options, authfile=path), jobs=jobs)
