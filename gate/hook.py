"""Git hooks: `registry-gate hook install` writes a pre-push hook; `registry-gate hook run` is what it runs.

`hook run` checks every source in the config's `images:` against its `targets:` (each through `registry-gate
check`, so the output is the same) and exits with the worst code. A git pre-push hook runs on `git push`, never
on `docker push` (or podman/skopeo pushes): for those, push with `registry-gate push SRC DEST`.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from gate.config import discover, load
from gate.errors import EXIT_FAIL, EXIT_INSPECT, EXIT_PASS, EXIT_USAGE, UsageError

MARKER = "# registry-gate pre-push hook"


def hook_script(python: str = sys.executable) -> str:
    return (
        "#!/bin/sh\n"
        f"{MARKER} (written by `registry-gate hook install`).\n"
        "# Runs on `git push` only (not on `docker push`): checks the images in .registry-gate.yaml.\n"
        "# Skip once with `git push --no-verify`.\n"
        f"exec {shlex.quote(python)} -m gate hook run\n"
    )


def _hooks_dir(repo: Path) -> Path:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--git-path", "hooks"], cwd=repo, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("git is not installed", "install git, or run `registry-gate hook run` yourself") from None
    if proc.returncode != 0:
        raise UsageError(f"{repo} is not in a git repository", "run `registry-gate hook install` inside the repository")
    path = Path(proc.stdout.strip())
    return path if path.is_absolute() else repo / path


def install(repo: Path, force: bool = False) -> Path:
    """Write the pre-push hook; refuse to replace someone else's hook unless `force`."""
    hooks = _hooks_dir(repo)
    hook = hooks / "pre-push"
    if hook.exists() and MARKER not in hook.read_text(errors="replace") and not force:
        raise UsageError(
            f"{hook} already exists and is not registry-gate's",
            "pass --force to replace it, or add the line `registry-gate hook run` to it",
        )
    hooks.mkdir(parents=True, exist_ok=True)
    hook.write_text(hook_script())
    hook.chmod(0o755)
    return hook


def run(config: str | None, no_waivers: bool) -> int:
    """Check each configured image with `registry-gate check`; the worst exit code wins (3 > 2 > 1 > 0)."""
    path = discover(config)
    if path is None:
        raise UsageError(
            "no config file: the hook checks the `images:` of .registry-gate.yaml",
            "write one (registry-gate config schema describes it), or pass --config FILE",
        )
    cfg = load(path)
    if not cfg.images:
        raise UsageError(f"{path} lists no `images:`", "add `images: [oci:DIR:TAG, ...]` with what you will push")
    worst = EXIT_PASS
    for image in cfg.images:
        sys.stdout.write(f"registry-gate hook: checking {image}\n")
        sys.stdout.flush()
        argv = [sys.executable, "-m", "gate", "check", image, "--config", str(path)]
        code = subprocess.run([*argv, "--no-waivers"] if no_waivers else argv, check=False).returncode
        if code not in (EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INSPECT):  # killed by a signal, or crashed
            sys.stdout.write(f"registry-gate hook: the check of {image} did not finish (exit {code})\n")
            code = EXIT_INSPECT
        worst = max(worst, code)
    if worst:
        sys.stdout.write("registry-gate hook: push stopped (git push --no-verify skips the hook)\n")
    return worst
