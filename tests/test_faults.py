"""Faults between the gate and a registry: every one is exit 3 with one line naming the cause and the fix.

A loopback proxy (tests/faultproxy.py) sits in front of the real registry fixture and injects 401, 403, 404, 429,
500, a hang, a truncated body and a flipped byte; the htpasswd and TLS registry fixtures are used as they are.
Real skopeo throughout; skopeo talks plain HTTP to 127.0.0.1 only with --no-tls-verify.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import factory as f
import pytest
from faultproxy import FaultProxy
from gatecli import one_line_error, run_gate, skopeo_spy
from registry import Registry

MANIFESTS = r"/v2/.+/manifests/"


def gate(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, env=env, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess[str], code: int = 3) -> str:
    return one_line_error(proc, code)


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> tuple[str, f.Tree]:
    """A two-platform OCI index in the plain registry: (repository, tree)."""
    tree = f.index([f.image(f.Platform("linux", "amd64")), f.image(f.Platform("linux", "arm64"))])
    f.push(registry, "faults/app", "1", tree)
    return "faults/app", tree


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.url, hang_limit=30) as p:
        yield p


def check_via(proxy: FaultProxy, ref: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return gate("check", f"docker://{proxy.host}/{ref}", "--no-tls-verify", "--no-cache", *extra)


def test_proxy_passes_through(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, tree = pushed
    proc = check_via(proxy, f"{repo}:1", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digest"] == tree.digest
    assert sum(1 for _, path in proxy.seen if "/manifests/" in path) >= 3  # the index and both children


@pytest.mark.parametrize(
    ("code", "kind", "fix"),
    [
        (401, "auth", "log in first"),
        (403, "auth", "log in first"),
        (404, "not-found", "skopeo list-tags"),
        (500, "server", "retry later"),
    ],
)
def test_status_faults(proxy: FaultProxy, pushed: tuple[str, f.Tree], code: int, kind: str, fix: str) -> None:
    repo, _ = pushed
    proxy.fault(MANIFESTS, "status", code=code)
    line = one_line(check_via(proxy, f"{repo}:1"))
    assert f"cannot inspect {proxy.host}/{repo}:1: {kind}:" in line
    assert fix in line


def test_rate_limit_is_retried_then_reported(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    """skopeo retries a 429 itself (honouring Retry-After); the gate does not multiply that wait."""
    repo, _ = pushed
    proxy.fault(MANIFESTS, "status", code=429, retry_after=1)
    started = time.monotonic()
    line = one_line(check_via(proxy, f"{repo}:1"))
    assert ": rate-limit:" in line
    assert "authenticate (--authfile)" in line
    assert (
        sum(1 for _, path in proxy.seen if path.endswith("/manifests/1")) == 5
    )  # skopeo itself tries 5 times; the gate adds none
    assert time.monotonic() - started < 20


def test_one_rate_limit_then_success(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, tree = pushed
    proxy.fault(MANIFESTS, "status", times=1, code=429)
    proc = check_via(proxy, f"{repo}:1", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digest"] == tree.digest


@pytest.mark.parametrize(("kind", "options"), [("status", {"code": 500}), ("truncate", {})])
def test_transient_faults_are_retried(
    proxy: FaultProxy, pushed: tuple[str, f.Tree], kind: str, options: dict[str, int]
) -> None:
    """Two failures then an answer: the gate's bounded retries (Options.retries = 2) get through."""
    repo, tree = pushed
    proxy.fault(r"/manifests/1$", kind, times=2, **options)
    proc = check_via(proxy, f"{repo}:1", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digest"] == tree.digest
    assert [p for _, p in proxy.seen].count(f"/v2/{repo}/manifests/1") == 3


def test_three_server_errors_exhaust_the_retries(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, _ = pushed
    proxy.fault(r"/manifests/1$", "status", times=3, code=503)
    line = one_line(check_via(proxy, f"{repo}:1"))
    assert ": server:" in line and "retry later" in line
    assert [p for _, p in proxy.seen].count(f"/v2/{repo}/manifests/1") == 3


def test_audit_reports_each_fault_and_keeps_going(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, tree = pushed
    proxy.fault(r"/manifests/missing$", "status", code=404)
    proc = gate("audit", f"{proxy.host}/{repo}:1", f"{proxy.host}/{repo}:missing", "--no-tls-verify", "-f", "json")
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["digest"] for r in data["reports"]] == [tree.digest]
    assert [(e["kind"], e["exit_code"]) for e in data["errors"]] == [("not-found", 3)]


def test_a_child_failing_fails_the_gate(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, tree = pushed
    child = tree.json()["manifests"][1]["digest"]
    proxy.fault(f"/manifests/{child}$", "status", code=404)
    line = one_line(check_via(proxy, f"{repo}:1"))
    assert f"{child}: not-found:" in line


def test_hang_times_out(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, _ = pushed
    proxy.fault(MANIFESTS, "hang")
    started = time.monotonic()
    line = one_line(check_via(proxy, f"{repo}:1", "--timeout", "1"))
    assert ": timeout: no answer in 1s" in line
    assert "raise --timeout" in line
    assert time.monotonic() - started < 20


def test_deadline_cuts_a_hang_short(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, _ = pushed
    proxy.fault(MANIFESTS, "hang")
    started = time.monotonic()
    line = one_line(check_via(proxy, f"{repo}:1", "--timeout", "30", "--deadline", "2"))
    assert "deadline" in line
    assert "raise --deadline" in line
    assert time.monotonic() - started < 10


def test_truncated_body(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, _ = pushed
    proxy.fault(MANIFESTS, "truncate")
    line = one_line(check_via(proxy, f"{repo}:1"))
    assert f"cannot inspect {proxy.host}/{repo}:1: network:" in line
    assert "EOF" in line


def test_flipped_byte_in_a_child_is_caught_by_its_digest(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, tree = pushed
    child = tree.json()["manifests"][0]["digest"]
    proxy.fault(f"/manifests/{child}$", "flip", offset=40)
    line = one_line(check_via(proxy, f"{repo}:1"))
    assert "do not hash to" in line and "tampered with" in line
    assert child in line


def test_flipped_byte_in_a_digest_pinned_top_is_caught(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    repo, tree = pushed
    proxy.fault(f"/manifests/{tree.digest}$", "flip", offset=40)
    line = one_line(check_via(proxy, f"{repo}@{tree.digest}"))
    assert "do not hash to" in line and "tampered with" in line


def test_flipped_byte_in_a_tag_fetched_top_breaks_parsing(proxy: FaultProxy, pushed: tuple[str, f.Tree]) -> None:
    """With a tag there is no digest to verify against; a flip that breaks the JSON is exit 3, not a pass.

    (A flip inside a string value would go unnoticed: with a tag, integrity rests on TLS. Pin a digest.)
    """
    repo, _ = pushed
    proxy.fault(r"/manifests/1$", "flip", offset=0)
    line = one_line(check_via(proxy, f"{repo}:1"))
    assert "the registry served something that is not a manifest" in line


# -- authentication ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_pushed(auth_registry: Registry) -> str:
    tree = f.index([f.image(f.Platform("linux", "amd64"))])
    f.push(auth_registry, "private/app", "1", tree, auth=auth_registry.creds)
    return f"{auth_registry.host}/private/app:1"


@pytest.fixture
def recording_path(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose `skopeo` logs its argv (and the mode of any --authfile) before running the real one."""
    return skopeo_spy(
        tmp_path,
        'for a in "$@"; do printf "%s\\n" "$a" >> "$LOG"; case "$a" in --authfile=*) '
        'stat -c "mode=%a" "${a#--authfile=}" >> "$LOG";; esac; done',
    )


def test_auth_registry_without_credentials(auth_pushed: str, recording_path: tuple[dict[str, str], Path]) -> None:
    env, _ = recording_path
    line = one_line(gate("check", f"docker://{auth_pushed}", "--no-tls-verify", env=env))
    assert ": auth:" in line
    assert "--authfile" in line


def test_credentials_from_the_environment_never_reach_argv_or_output(
    auth_registry: Registry, auth_pushed: str, recording_path: tuple[dict[str, str], Path]
) -> None:
    env, log = recording_path
    env.update(REGISTRY_GATE_USERNAME=auth_registry.user, REGISTRY_GATE_PASSWORD=auth_registry.password)
    for fmt in ("text", "json"):
        proc = gate("check", f"docker://{auth_pushed}", "--no-tls-verify", "-f", fmt, env=env)
        assert proc.returncode == 0, proc.stderr
        assert auth_registry.password not in proc.stdout + proc.stderr
    recorded = log.read_text()
    assert auth_registry.password not in recorded
    assert "mode=600" in recorded
    authfiles = [line.split("=", 1)[1] for line in recorded.splitlines() if line.startswith("--authfile=")]
    assert authfiles
    assert not any(Path(p).exists() for p in authfiles)  # deleted after the run


def test_audit_json_never_holds_the_password(
    auth_registry: Registry, auth_pushed: str, recording_path: tuple[dict[str, str], Path]
) -> None:
    env, log = recording_path
    env.update(REGISTRY_GATE_USERNAME=auth_registry.user, REGISTRY_GATE_PASSWORD=auth_registry.password)
    repo = auth_pushed.rsplit(":", 1)[0]
    proc = gate("audit", repo, "--no-tls-verify", "-f", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    totals = json.loads(proc.stdout)["totals"]
    assert (totals["sources"], totals["fail"], totals["error"]) == (1, 0, 0)
    assert auth_registry.password not in proc.stdout + proc.stderr + log.read_text()


def test_wrong_password_from_the_environment(
    auth_registry: Registry, auth_pushed: str, recording_path: tuple[dict[str, str], Path]
) -> None:
    env, _ = recording_path
    env.update(REGISTRY_GATE_USERNAME=auth_registry.user, REGISTRY_GATE_PASSWORD="not-the-password")
    line = one_line(gate("check", f"docker://{auth_pushed}", "--no-tls-verify", env=env))
    assert ": auth:" in line
    assert "not-the-password" not in line


def test_half_the_credentials_is_a_usage_error(auth_pushed: str, recording_path: tuple[dict[str, str], Path]) -> None:
    env, _ = recording_path
    env["REGISTRY_GATE_USERNAME"] = "gate"
    line = one_line(gate("check", f"docker://{auth_pushed}", "--no-tls-verify", env=env), code=2)
    assert "REGISTRY_GATE_PASSWORD is not set" in line


def test_authfile(
    auth_registry: Registry, auth_pushed: str, recording_path: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = recording_path
    import base64

    token = base64.b64encode(f"{auth_registry.user}:{auth_registry.password}".encode()).decode()
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    assert (
        gate("check", f"docker://{auth_pushed}", "--no-tls-verify", "--authfile", str(authfile), env=env).returncode
        == 0
    )
    env["REGISTRY_AUTH_FILE"] = str(authfile)
    assert gate("check", f"docker://{auth_pushed}", "--no-tls-verify", env=env).returncode == 0


# -- TLS ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pushed(tls_registry: Registry) -> str:
    tree = f.index([f.image(f.Platform("linux", "amd64"))])
    f.push(tls_registry, "tls/app", "1", tree, cafile=tls_registry.cafile)
    return f"{tls_registry.host}/tls/app:1"


def test_self_signed_registry_is_refused_with_the_fix(tls_pushed: str) -> None:
    line = one_line(gate("check", f"docker://{tls_pushed}", "--no-cache"))
    assert ": tls:" in line
    assert "--cert-dir" in line and "--no-tls-verify" in line


def test_self_signed_registry_with_cert_dir_or_no_verify(tls_registry: Registry, tls_pushed: str) -> None:
    assert tls_registry.cert_dir is not None
    assert gate("check", f"docker://{tls_pushed}", "--cert-dir", str(tls_registry.cert_dir)).returncode == 0
    assert gate("check", f"docker://{tls_pushed}", "--no-tls-verify").returncode == 0


def test_private_authfile_is_0600_and_removed() -> None:
    from gate.skopeo import private_authfile

    with private_authfile("registry.example", "u", "p") as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert json.loads(Path(path).read_text())["auths"]["registry.example"]["auth"] == "dTpw"
    assert not os.path.exists(path)


def test_environment_credentials_keep_the_other_hosts_of_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gate.skopeo import Options, session

    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": {"other.example": {"auth": "b3RoZXI6c2VjcmV0"}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    monkeypatch.setenv("REGISTRY_GATE_USERNAME", "u")
    monkeypatch.setenv("REGISTRY_GATE_PASSWORD", "p")
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("REGISTRY_GATE_REGISTRY", raising=False)
    with session(Options(), {"registry.example"}) as skopeo:
        assert skopeo.options.authfile is not None
        auths = json.loads(Path(skopeo.options.authfile).read_text())["auths"]
        assert auths == {"other.example": {"auth": "b3RoZXI6c2VjcmV0"}, "registry.example": {"auth": "dTpw"}}
    assert not Path(skopeo.options.authfile).exists()
