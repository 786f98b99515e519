"""A real CNCF distribution registry (`docker-registry serve`) on 127.0.0.1, for tests.

Variants: plain HTTP, htpasswd basic auth, TLS with a throwaway self-signed certificate.
The config is written as JSON, which is valid YAML, so no YAML library is needed.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

REGISTRY_BINARY = "docker-registry"


class RegistryStartError(RuntimeError):
    """The registry process died or never answered on /v2/."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` updated recursively with `extra` (nested dicts merge, other values replace)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def unique_repo(prefix: str = "test") -> str:
    """A fresh, valid repository name such as `test/3f2a9c1d0b`."""
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RegistryStartError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


class Registry:
    """One `docker-registry` process with storage in a private temp dir.

    `auth=True` adds htpasswd basic auth (`.user`, `.password`); `tls=True` serves HTTPS with a
    self-signed cert for IP:127.0.0.1 (`.cert_dir` holds `ca.crt`, usable as skopeo `--cert-dir`;
    `.cafile` is that file). `config` is deep-merged into the generated registry config.
    """

    def __init__(
        self,
        *,
        auth: bool = False,
        tls: bool = False,
        config: Mapping[str, Any] | None = None,
        user: str = "gate",
        password: str | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.auth = auth
        self.tls = tls
        self.extra_config: Mapping[str, Any] = config or {}
        self.user = user
        self.password = password or secrets.token_hex(8)
        self.startup_timeout = startup_timeout
        self.root = Path(tempfile.mkdtemp(prefix="registry-gate-reg-"))
        self.cert_dir: Path | None = None
        self.cafile: Path | None = None
        self.port = 0
        self.config: dict[str, Any] = {}
        self.log_path = self.root / "registry.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def creds(self) -> tuple[str, str] | None:
        """(user, password) when auth is on, else None; fits `factory.push(auth=...)`."""
        return (self.user, self.password) if self.auth else None

    # -- lifecycle -------------------------------------------------------------------------
    def _prepare(self) -> None:
        if shutil.which(REGISTRY_BINARY) is None:
            raise RegistryStartError(
                f"{REGISTRY_BINARY!r} not found on PATH; install the Debian package docker-registry"
            )
        if self.auth:
            line = _run(["htpasswd", "-Bbn", self.user, self.password])
            (self.root / "htpasswd").write_text(line.strip() + "\n")
        if self.tls:
            self.cert_dir = self.root / "certs"
            self.cert_dir.mkdir()
            self.cafile = self.cert_dir / "ca.crt"
            # The key stays outside cert_dir: c/image treats a lone *.key there as a client-cert error.
            _run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                    "-keyout",
                    str(self.root / "server.key"),
                    "-out",
                    str(self.cafile),
                ]
            )

    def _build_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.auth:
            config["auth"] = {"htpasswd": {"realm": "registry-gate", "path": str(self.root / "htpasswd")}}
        if self.tls:
            config["http"]["tls"] = {"certificate": str(self.cafile), "key": str(self.root / "server.key")}
        return deep_merge(config, self.extra_config)

    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context trusting this registry's cert (None for plain HTTP)."""
        return ssl.create_default_context(cafile=str(self.cafile)) if self.tls else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=2, context=self.ssl_context()):
                return True
        except urllib.error.HTTPError as e:
            return e.code == 401  # auth registries answer /v2/ with a challenge
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> Registry:
        """Start the process and wait (bounded) until /v2/ answers. Retries a lost port race."""
        self._prepare()
        for _attempt in range(3):
            self.port = free_port()
            self.config = self._build_config()
            config_path = self.root / "config.yml"
            config_path.write_text(json.dumps(self.config, indent=2))
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(
                    [REGISTRY_BINARY, "serve", str(config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + self.startup_timeout
            delay = 0.02
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                if self._answers():
                    return self
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            exited = self._proc.poll() is not None
            self.stop(cleanup=False)
            tail = self.log_tail()
            if not (exited and "address already in use" in tail):
                self.stop()
                how = "exited early" if exited else f"did not answer /v2/ within {self.startup_timeout}s"
                raise RegistryStartError(f"docker-registry on {self.url} {how}; log tail:\n{tail}")
        tail = self.log_tail()
        self.stop()
        raise RegistryStartError(f"could not bind a free port; log tail:\n{tail}")

    def stop(self, timeout: float = 5.0, *, cleanup: bool = True) -> None:
        """Terminate the process (kill after `timeout`), then remove the temp dir."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if cleanup:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        kind = "+".join(k for k, on in (("auth", self.auth), ("tls", self.tls)) if on) or "plain"
        return f"<Registry {kind} {self.url} running={self.running}>"

    # -- skopeo helpers --------------------------------------------------------------------
    def skopeo_tls_args(self, prefix: str = "") -> list[str]:
        """TLS flags for skopeo: `--tls-verify=false` (HTTP) or `--cert-dir DIR`.

        `prefix` is "", "src-" or "dest-" (for `skopeo copy`).
        """
        if self.tls:
            return [f"--{prefix}cert-dir", str(self.cert_dir)]
        return [f"--{prefix}tls-verify=false"]


def skopeo(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run the real skopeo; on failure with check=True raise AssertionError holding stderr."""
    proc = subprocess.run(["skopeo", *args], capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"skopeo {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')}"
        )
    return proc
