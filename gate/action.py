"""`registry-gate action`: the GitHub Action's logic (action.yml runs it), runnable anywhere to play the runner.

Inputs come only from the environment (`INPUT_IMAGE`, `INPUT_TARGETS`, ...: action.yml maps each input into
`env:`, never into the script text). It runs `registry-gate check` once, writing the JSON report, the Markdown
summary and, when asked, SARIF; prints annotations (`--format github`) to the log; appends the summary (capped
under GitHub's 1 MiB) to $GITHUB_STEP_SUMMARY; and sets the outputs verdict, failed-targets, report and sarif in
$GITHUB_OUTPUT. The exit code is check's: 0 pass, 1 the gate failed, 2 bad input, 3 could not inspect.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from gate.errors import EXIT_USAGE, UsageError
from gate.report import FORMATS
from gate.report.markdown_format import cap

INPUTS = (
    "IMAGE",
    "TARGETS",
    "PROFILES",
    "POLICIES",
    "CONFIG",
    "FAIL_ON",
    "FORMAT",
    "SARIF_FILE",
    "AUTHFILE",
    "TLS_VERIFY",
)


def _input(env: Mapping[str, str], name: str) -> str:
    return env.get(f"INPUT_{name}", "").strip()


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def check_argv(env: Mapping[str, str], report: Path, summary: Path) -> list[str]:
    """The `registry-gate check` arguments for these inputs."""
    image = _input(env, "IMAGE")
    if not image:
        raise UsageError("the action's `image` input is empty", "set `with: image: oci:DIR:TAG` (or docker://REF)")
    argv = [image]
    argv += [a for t in _lines(_input(env, "TARGETS")) for a in ("--target", t)]
    argv += [a for p in _lines(_input(env, "PROFILES").replace(",", "\n")) for a in ("--profile", p)]
    argv += [a for p in _lines(_input(env, "POLICIES")) for a in ("--policy", p)]
    for name, flag in (("CONFIG", "--config"), ("FAIL_ON", "--fail-on"), ("AUTHFILE", "--authfile")):
        if _input(env, name):
            argv += [flag, _input(env, name)]
    tls = _input(env, "TLS_VERIFY").lower()
    if tls not in ("", "true", "false"):
        raise UsageError(f"the action's `tls-verify` input is {tls!r}", "write true or false (or leave it empty)")
    if tls:
        argv.append("--tls-verify" if tls == "true" else "--no-tls-verify")
    log_format = _input(env, "FORMAT") or "github"
    if log_format not in FORMATS:
        raise UsageError(f"the action's `format` input is {log_format!r}", f"pick one of {', '.join(FORMATS)}")
    argv += ["--output", f"json={report}", "--output", f"markdown={summary}"]
    if _input(env, "SARIF_FILE"):
        argv += ["--output", f"sarif={_input(env, 'SARIF_FILE')}"]
    return [*argv, "--format", log_format]


def _set_outputs(env: Mapping[str, str], values: Mapping[str, str]) -> None:
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in values.items():
            delimiter = f"registry_gate_{secrets.token_hex(8)}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _append_summary(env: Mapping[str, str], text: str) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(cap(text))


def _overall(verdicts: list[str]) -> str:
    return "fail" if "fail" in verdicts else "warn" if "warn" in verdicts else "pass"


def run(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    work = Path(env.get("RUNNER_TEMP") or ".") / "registry-gate"
    work.mkdir(parents=True, exist_ok=True)
    report, summary = (work / "report.json").resolve(), work / "summary.md"
    for stale in (report, summary):
        stale.unlink(missing_ok=True)
    sarif = _input(env, "SARIF_FILE")
    try:
        argv = check_argv(env, report, summary)
    except UsageError as exc:
        sys.stdout.write(f"::error title=registry-gate::{exc}\n")
        _set_outputs(env, {"verdict": "error", "failed-targets": "", "report": "", "sarif": ""})
        _append_summary(env, f"## registry-gate: error\n\n{exc}\n")
        return EXIT_USAGE
    sys.stdout.write(f"registry-gate action: registry-gate check {' '.join(argv)}\n")
    sys.stdout.flush()
    proc = subprocess.run(
        [sys.executable, "-m", "gate", "check", *argv], stderr=subprocess.PIPE, text=True, check=False, env=dict(env)
    )
    sys.stderr.write(proc.stderr)
    if proc.returncode > 1 or not report.is_file():
        problem = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        sys.stdout.write(f"::error title=registry-gate could not check::{problem}\n")
        _set_outputs(env, {"verdict": "error", "failed-targets": "", "report": "", "sarif": ""})
        _append_summary(env, f"## registry-gate: could not check\n\n`{problem}`\n")
        return proc.returncode or EXIT_USAGE
    data = json.loads(report.read_text(encoding="utf-8"))
    targets = data["targets"]
    failing = {"fail", "warn"} if data.get("fail_on") == "warning" else {"fail"}
    failed = [t["target"] or f"profile {t['profile']}" for t in targets if t["verdict"] in failing]
    _set_outputs(
        env,
        {
            "verdict": _overall([t["verdict"] for t in targets]),
            "failed-targets": "\n".join(failed),
            "report": str(report),
            "sarif": str(Path(sarif).resolve()) if sarif else "",
        },
    )
    _append_summary(env, summary.read_text(encoding="utf-8"))
    return proc.returncode
