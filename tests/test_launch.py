"""The console script starts a check's first registry fetch before loading the CLI, and the check adopts it.

Real skopeo against the real registry throughout. A spy `skopeo` on PATH logs each call's argv, then runs the real
one: a call started early and taken over shows up once; one that was not taken over would show up twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import click
import factory as f
import pytest
import typer.main
from faultproxy import FaultProxy
from gatecli import GATE, run_gate, skopeo_spy
from hypothesis import given
from hypothesis import strategies as st
from registry import Registry

from gate import early, launch, skopeo
from gate.cli import app
from gate.reference import parse


@pytest.fixture
def spy(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose `skopeo` appends its argv (one line a call) to a log, then runs the real skopeo."""
    return skopeo_spy(tmp_path, 'printf "%s\\n" "$*" >> "$LOG"')


def test_the_option_tables_are_the_check_command_s_options() -> None:
    check = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    valued, flags = set(), set()
    for param in check.params:
        if isinstance(param, click.Option):
            names = [*param.opts, *param.secondary_opts]
            (flags if param.is_flag else valued).update(names)
    assert valued == launch.VALUED
    assert flags == launch.FLAGS


@pytest.mark.parametrize(
    "shape",
    [
        ["SOURCE", "--no-tls-verify"],
        ["SOURCE", "--no-tls-verify", "-t", "quay.io/x/y:1=quay", "--format=json"],
        ["-j", "4", "--no-tls-verify", "SOURCE", "--no-cache", "-p", "oci"],
    ],
    ids=["plain", "options-after", "options-around"],
)
def test_the_early_fetch_is_taken_over_not_repeated(
    registry: Registry, repo: str, spy: tuple[dict[str, str], Path], shape: list[str]
) -> None:
    env, log = spy
    tree = f.index([f.image(f.Platform("linux", "amd64")), f.image(f.Platform("linux", "arm64"))])
    f.push(registry, repo, "1", tree)
    args = ["check", *(f"docker://{registry.host}/{repo}:1" if a == "SOURCE" else a for a in shape)]
    assert launch.early_fetch(args) is not None  # this command line takes the early path
    proc = run_gate(*args, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    calls = log.read_text().splitlines()
    assert sum(c.endswith(f"{repo}:1") for c in calls) == 1, calls
    assert len(calls) == 3  # the index once, then its two children


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["check", "docker://h.io/r@sha256:" + "a" * 64], "digest-pinned: the cache may answer"),
        (["check", "oci:layout"], "not a registry"),
        (["check", "docker://h.io/r:1", "--help"], "help"),
        (["check", "docker://h.io/r:1", "--jobs"], "a value is missing"),
        (["check", "docker://h.io/r:1", "--tls-verify=false"], "a flag with a value"),
        (["check", "docker://h.io/r:1", "extra"], "a second argument"),
        (["rules"], "another command"),
        (["check", "docker://-bad.io/r:1"], "not a host"),
        (["check", "docker://python:3.12"], "Docker Hub's short name: normalised by the CLI"),
        (["check", "docker://index.docker.io/library/python:3.12"], "a Docker Hub alias"),
        (["check", "docker://h.io/r"], "no tag: the CLI decides"),
    ],
)
def test_command_lines_that_start_nothing(args: list[str], why: str) -> None:
    assert launch.early_fetch(args) is None, why


def test_the_early_fetch_carries_the_registry_options() -> None:
    argv = launch.early_fetch(
        ["check", "--authfile", "/a.json", "--cert-dir=/certs", "docker://h.io/r:1", "--no-tls-verify"]
    )
    assert argv == [
        "skopeo",
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--authfile=/a.json",
        "--cert-dir=/certs",
        "docker://h.io/r:1",
    ]


def test_no_early_fetch_with_credentials_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(skopeo.USERNAME_ENV, "u")
    assert launch.early_fetch(["check", "docker://h.io/r:1"]) is None


def test_an_early_fetch_nobody_takes_is_killed_at_exit(registry: Registry, repo: str) -> None:
    f.push(registry, repo, "1", f.index([f.image(f.Platform("linux", "amd64"))]))
    with FaultProxy(registry.url, hang_limit=30) as proxy:
        proxy.fault(repo, "hang")  # the registry never answers: the early skopeo would wait 30 s
        started = time.monotonic()
        # --jobs 0 is refused by the CLI before any fetch, so the early call is never taken over
        proc = run_gate("check", f"docker://{proxy.host}/{repo}:1", "--no-tls-verify", "--jobs", "0", timeout=20)
        assert proc.returncode == 2, proc.stderr
        assert time.monotonic() - started < 10
        time.sleep(0.2)
        left = [
            p for p in Path("/proc").iterdir() if p.name.isdigit() and repo in _cmdline(p) and "skopeo" in _cmdline(p)
        ]
        assert left == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_short_calls_run_on_one_go_thread_without_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOGC", "GOMAXPROCS", "GOMEMLIMIT"):
        monkeypatch.delenv(name, raising=False)
    env = early.go_env(["skopeo", "inspect", "--raw", "docker://h.io/r:1"])
    assert env is not None
    assert (env["GOGC"], env["GOMAXPROCS"], env["GOMEMLIMIT"]) == ("off", "1", "256MiB")
    assert early.go_env(["skopeo", "copy", "--all", "docker://a/b:1", "docker://c/d:1"]) is None
    monkeypatch.setenv("GOGC", "50")
    assert early.go_env(["skopeo", "inspect", "--raw", "docker://h.io/r:1"]) is None  # the user's own setting


@given(st.text(alphabet="abcdefgh.-:/_019AB@ ", max_size=40))
def test_a_canonical_reference_is_what_the_cli_names(ref: str) -> None:
    """What the early call names is what the real call names: the reference reads back unchanged."""
    if launch.canonical(ref):
        assert str(parse(f"docker://{ref}")) == ref


@pytest.mark.parametrize(
    "ref", ["ghcr.io/org/app:1.2", "127.0.0.1:5000/a/b:latest", "localhost/x:y", "quay.io/o/r:v1_2-3"]
)
def test_common_references_are_canonical(ref: str) -> None:
    assert launch.canonical(ref)
    assert str(parse(f"docker://{ref}")) == ref


def test_an_early_call_that_cannot_start_leaves_the_failure_to_the_real_one(tmp_path: Path) -> None:
    early.start([str(tmp_path / "no-such-skopeo"), "inspect", "--raw", "docker://h.io/r:1"])
    assert early.take([str(tmp_path / "no-such-skopeo"), "inspect", "--raw", "docker://h.io/r:1"]) is None


def test_an_early_call_past_its_timeout_is_killed(tmp_path: Path) -> None:
    """The real call's timeout applies to a call that started early (a shell stands in for a hung skopeo)."""
    argv = ["sh", "-c", "echo started; exec sleep 30"]
    early.start(argv)
    started = early.take(argv)
    assert started is not None
    began = time.monotonic()
    assert started.wait(0.5) is None
    assert time.monotonic() - began < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(started.pid, os.WNOHANG)  # killed and reaped


def test_an_early_call_s_output_and_status_are_kept_whole() -> None:
    argv = ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo oops >&2; exit 3"]
    early.start(argv)
    started = early.take(argv)
    assert started is not None
    result = started.wait(30)
    assert result is not None
    status, out, err = result
    assert (status, len(out), set(out), err) == (3, 300000, {ord("x")}, b"oops\n")


def test_a_skopeo_process_inherits_only_stdin_stdout_and_stderr() -> None:
    r, w = os.pipe()
    os.set_inheritable(w, True)  # as a caller's shell hands its own descriptors down
    try:
        result = early.Started(["sh", "-c", "ls /proc/$$/fd"]).wait(30)
    finally:
        os.close(r)
        os.close(w)
    assert result is not None
    assert sorted(int(fd) for fd in result[1].split()) == [0, 1, 2]


def test_the_timeout_holds_after_the_process_closes_its_output() -> None:
    began = time.monotonic()
    assert early.Started(["sh", "-c", "exec >&- 2>&-; sleep 30"]).wait(0.5) is None
    assert time.monotonic() - began < 5


def test_stop_all_kills_running_processes_and_starts_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(early, "_ending", False)  # restored after the test: stop_all ends this process's runs
    running = early.Started(["sleep", "30"])
    early.start(["sleep", "31"])  # an early call nobody took
    early.stop_all()
    began = time.monotonic()
    result = running.wait(30)
    assert result is not None and result[0] == -9
    assert time.monotonic() - began < 5
    assert early.take(["sleep", "31"]) is None
    with pytest.raises(OSError, match="ending"):
        early.Started(["true"])


def _skopeo_for(repo: str) -> list[str]:
    return [
        p.name for p in Path("/proc").iterdir() if p.name.isdigit() and repo in _cmdline(p) and "skopeo" in _cmdline(p)
    ]


@pytest.mark.parametrize("ending", ["usage-error", "sigterm"])
def test_a_run_that_ends_early_leaves_no_skopeo_behind(registry: Registry, repo: str, ending: str) -> None:
    """A usage error found after the fetch started, or a SIGTERM, ends the run at once and kills its skopeo calls
    (the registry hangs, so they would otherwise run on, and the exit would wait for their retries)."""
    f.push(registry, repo, "1", f.index([f.image(f.Platform("linux", "amd64"))]))
    with FaultProxy(registry.url, hang_limit=60) as proxy:
        proxy.fault(repo, "hang")
        args = ["check", f"docker://{proxy.host}/{repo}:1", "--no-tls-verify"]
        started = time.monotonic()
        if ending == "usage-error":
            proc = run_gate(*args, "-t", "not a reference", timeout=30)
            assert proc.returncode == 2, proc.stderr
            assert "Traceback" not in proc.stderr
        else:
            gate = subprocess.Popen([*GATE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while not _skopeo_for(repo) and time.monotonic() - started < 20:
                time.sleep(0.02)
            assert _skopeo_for(repo), "no skopeo call started"
            gate.send_signal(signal.SIGTERM)
            assert gate.wait(timeout=20) == -signal.SIGTERM
        assert time.monotonic() - started < 10
        time.sleep(0.2)
        assert _skopeo_for(repo) == []
