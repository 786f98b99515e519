"""Run the CLI the way a user does (`python -m gate ...`), for every test that drives it end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

GATE = [sys.executable, "-m", "gate"]


def run_gate(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m gate ARGS`; `env` replaces the environment when given."""
    return subprocess.run(
        [*GATE, *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=dict(env) if env is not None else None,
    )


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without a config or CI of its own: XDG config under `home`, no colour, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_GATE_CONFIG", "GITHUB_ACTIONS")}
    return {**env, "XDG_CONFIG_HOME": str(home / "xdg"), "NO_COLOR": "1", **extra}


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a refusal with exit `code` (no traceback); returned for the caller's asserts."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def skopeo_spy(folder: Path, record: str) -> tuple[dict[str, str], Path]:
    """An environment whose `skopeo` first runs the sh snippet `record` (the log file is "$LOG"), then execs the real
    skopeo with the same arguments; no credentials or auth file of this environment's leak in. Returns (env, log)."""
    real = subprocess.run(["sh", "-c", "command -v skopeo"], capture_output=True, text=True, check=True).stdout.strip()
    shim = folder / "bin"
    shim.mkdir()
    log = folder / "skopeo-calls.log"
    (shim / "skopeo").write_text(f'#!/bin/sh\nLOG={log}\n{record}\nexec {real} "$@"\n')
    (shim / "skopeo").chmod(0o755)
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}", XDG_CACHE_HOME=str(folder / "cache"))
    for name in ("REGISTRY_AUTH_FILE", "REGISTRY_GATE_USERNAME", "REGISTRY_GATE_PASSWORD", "REGISTRY_GATE_REGISTRY"):
        env.pop(name, None)
    return env, log
