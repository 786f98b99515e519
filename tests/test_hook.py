"""Git pre-push hook: `registry-gate hook install` and a real `git push` through it (issue #4, item 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import factory as f
from faultproxy import FaultProxy
from gatecli import GATE, run_gate
from registry import Registry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = f"oci:{ROOT / 'examples' / 'python-3.12'}:3.12"


def env(tmp: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REGISTRY_GATE_", "GIT_"))}
    return {
        **base,
        "XDG_CONFIG_HOME": str(tmp / "xdg"),
        "HOME": str(tmp / "home"),
        "NO_COLOR": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }


def gate(*args: str, cwd: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, cwd=cwd, env=env(tmp))


def git(*args: str, cwd: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=env(tmp)
    )


def repo_with_remote(tmp: Path, config: str) -> Path:
    remote, work = tmp / "remote.git", tmp / "work"
    assert git("init", "-q", "--bare", str(remote), cwd=tmp, tmp=tmp).returncode == 0
    assert git("init", "-q", "-b", "main", str(work), cwd=tmp, tmp=tmp).returncode == 0
    (work / ".registry-gate.yaml").write_text(config)
    for args in (("add", "."), ("commit", "-q", "-m", "c"), ("remote", "add", "origin", str(remote))):
        proc = git(*args, cwd=work, tmp=tmp)
        assert proc.returncode == 0, proc.stderr
    return work


def test_install_writes_an_executable_hook_and_keeps_foreign_ones(tmp_path: Path) -> None:
    work = repo_with_remote(tmp_path, f"images: [{EXAMPLE}]\n")
    proc = gate("hook", "install", cwd=work, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "runs on `git push`, not `docker push`" in proc.stdout
    hook = work / ".git" / "hooks" / "pre-push"
    assert os.access(hook, os.X_OK)
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\n# registry-gate pre-push hook")
    assert text.rstrip().endswith(f"exec {sys.executable} -m gate hook run")
    assert gate("hook", "install", cwd=work, tmp=tmp_path).returncode == 0  # ours: replaced quietly
    hook.write_text("#!/bin/sh\necho mine\n")
    proc = gate("hook", "install", cwd=work, tmp=tmp_path)
    assert proc.returncode == 2 and "already exists and is not registry-gate's" in proc.stderr
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
    assert gate("hook", "install", "--force", cwd=work, tmp=tmp_path).returncode == 0
    assert "hook run" in hook.read_text()


def test_install_outside_git_is_a_usage_error(tmp_path: Path) -> None:
    proc = gate("hook", "install", cwd=tmp_path, tmp=tmp_path)
    assert proc.returncode == 2
    assert "is not in a git repository" in proc.stderr and "Traceback" not in proc.stderr


def test_git_push_is_stopped_by_a_failing_image_and_allowed_by_a_passing_one(tmp_path: Path) -> None:
    work = repo_with_remote(tmp_path, f"images: [{EXAMPLE}]\ntargets: [{{ref: quay.io/acme/python:3.12}}]\n")
    assert gate("hook", "install", cwd=work, tmp=tmp_path).returncode == 0
    proc = git("push", "-q", "origin", "main", cwd=work, tmp=tmp_path)
    assert proc.returncode != 0
    assert "registry-gate hook: checking oci:" in proc.stdout + proc.stderr
    assert "FAIL  quay.io/acme/python:3.12" in proc.stdout + proc.stderr
    assert git("ls-remote", "origin", cwd=work, tmp=tmp_path).stdout == ""
    (work / ".registry-gate.yaml").write_text(f"images: [{EXAMPLE}]\ntargets: [{{profile: dockerhub}}]\n")
    git("commit", "-q", "-am", "target docker hub", cwd=work, tmp=tmp_path)
    proc = git("push", "-q", "origin", "main", cwd=work, tmp=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "refs/heads/main" in git("ls-remote", "origin", cwd=work, tmp=tmp_path).stdout


def test_hook_run_needs_images(tmp_path: Path) -> None:
    (tmp_path / ".registry-gate.yaml").write_text("targets: [{profile: quay}]\n")
    proc = gate("hook", "run", cwd=tmp_path, tmp=tmp_path)
    assert proc.returncode == 2 and "lists no `images:`" in proc.stderr
    (tmp_path / ".registry-gate.yaml").unlink()
    proc = gate("hook", "run", cwd=tmp_path, tmp=tmp_path)
    assert proc.returncode == 2 and "no config file" in proc.stderr


def test_hook_run_takes_the_worst_exit_code(tmp_path: Path) -> None:
    (tmp_path / ".registry-gate.yaml").write_text(
        f"images: [{EXAMPLE}, oci:{tmp_path / 'missing'}:1]\ntargets: [{{profile: dockerhub}}]\n"
    )
    proc = gate("hook", "run", cwd=tmp_path, tmp=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr  # a missing layout is bad input (2), worse than fail (1)
    assert proc.stdout.count("registry-gate hook: checking") == 2


def test_install_warns_when_there_is_no_config_yet(tmp_path: Path) -> None:
    work = tmp_path / "bare"
    assert git("init", "-q", str(work), cwd=tmp_path, tmp=tmp_path).returncode == 0
    proc = gate("hook", "install", cwd=work, tmp=tmp_path)
    assert proc.returncode == 0
    assert "warning: no .registry-gate.yaml here yet" in proc.stderr
    configured = repo_with_remote(tmp_path, f"images: [{EXAMPLE}]\n")
    assert "warning" not in gate("hook", "install", cwd=configured, tmp=tmp_path).stderr


def test_a_check_killed_by_a_signal_stops_the_push(registry: Registry, repo: str, tmp_path: Path) -> None:
    """The hook fails closed: a check that never finishes (here SIGKILLed while the registry hangs) is exit 3."""
    f.push(registry, repo, "1", f.index([f.image(f.Platform("linux", "amd64"))]))
    with FaultProxy(registry.url, hang_limit=60) as proxy:
        proxy.fault(repo, "hang")
        image = f"docker://{proxy.host}/{repo}:1"
        (tmp_path / ".registry-gate.yaml").write_text(f"images: ['{image}']\n")
        hook = subprocess.Popen(
            [*GATE, "hook", "run"], cwd=tmp_path, env=env(tmp_path), stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        check = None
        while check is None and time.monotonic() < deadline:
            check = next((p for p in _processes() if "check" in p[1] and image in p[1] and "gate" in p[1]), None)
            time.sleep(0.05)
        assert check is not None, "the hook never started the check"
        os.kill(check[0], signal.SIGKILL)
        out, _ = hook.communicate(timeout=30)
    assert hook.returncode == 3, out
    assert f"the check of {image} did not finish (exit -9)" in out
    assert "push stopped" in out


def _processes() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
            except (OSError, UnicodeDecodeError):
                continue
    return found
