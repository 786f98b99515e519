"""The GitHub Action, with this test playing the runner (issue #4, item 1).

The runner is played for real where it can be: action.yml's own step scripts run under `bash -eo pipefail` with
the env that action.yml maps from the inputs (so `${{ inputs.* }}` reaches the script only through env, as on
GitHub), GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / RUNNER_TEMP / GITHUB_ACTION_PATH / GITHUB_ACTIONS=true set, against
the real registry fixture and the real skopeo. The install step runs for real once (a fresh venv and `pip install`
of this checkout, from the package index: ~30 s); the other tests put this checkout's registry-gate where that
venv would be, which makes the install step skip its pip install.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import factory as f
import pytest
import yaml
from registry import Registry, unique_repo

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
QUAY = "quay.io/acme/python:3.12"
_EXPR = re.compile(r"^\$\{\{\s*inputs\.([a-z-]+)\s*\}\}$")


def step(step_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    for s in ACTION["runs"]["steps"]:
        if (step_id and s.get("id") == step_id) or (name and s.get("name") == name):
            return dict(s)
    raise AssertionError(f"no step {step_id or name} in action.yml")


def parse_outputs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        value = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        out[name] = "\n".join(value)
    return out


class Runner:
    """Just enough of a GitHub runner to run the action's composite steps."""

    def __init__(self, tmp: Path, venv: bool = True) -> None:
        self.temp = tmp / "runner-temp"
        self.work = tmp / "workspace"
        self.output = tmp / "github_output"
        self.summary = tmp / "step_summary"
        for d in (self.temp, self.work):
            d.mkdir(parents=True)
        self.output.touch()
        self.summary.touch()
        if venv:
            venv_bin = self.temp / "registry-gate-venv" / "bin"
            venv_bin.mkdir(parents=True)
            (venv_bin / "registry-gate").symlink_to(Path(sys.executable).parent / "registry-gate")

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "REGISTRY_GATE_"))}
        return {
            **base,
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_WORKSPACE": str(self.work),
            "RUNNER_TEMP": str(self.temp),
            "XDG_CONFIG_HOME": str(self.temp / "xdg"),
        }

    def run_step(
        self, s: dict[str, Any], inputs: dict[str, str], extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert s["shell"] == "bash"
        env = self.env()
        for name, value in (s.get("env") or {}).items():
            match = _EXPR.match(str(value))
            assert match, f"{name}: env values must be plain ${{{{ inputs.X }}}}, not {value!r}"
            key = match.group(1)
            env[name] = inputs.get(key, str(ACTION["inputs"][key].get("default", "")))
        env.update(extra or {})
        return subprocess.run(
            ["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s["run"]],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def run_action(self, **inputs: str) -> subprocess.CompletedProcess[str]:
        for s in ACTION["runs"]["steps"][:-1]:
            proc = self.run_step(s, inputs)
            assert proc.returncode == 0, (s["name"], proc.stdout, proc.stderr)
        return self.run_step(step("gate"), inputs)

    def outputs(self) -> dict[str, str]:
        return parse_outputs(self.output.read_text())


@pytest.fixture(scope="module")
def mixed(registry: Registry) -> str:
    repo = unique_repo("action")
    f.push(registry, repo, "3.12", f.python_like())
    return f"{registry.host}/{repo}:3.12"


def test_action_fails_the_quay_target_and_reports_everything(mixed: str, registry: Registry, tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    local = f"{registry.host}/acme/copy:3.12=distribution"
    proc = runner.run_action(
        image=f"docker://{mixed}",
        targets=f"{QUAY}\n{local}\n",
        **{"tls-verify": "false", "sarif-file": "gate.sarif"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    outputs = runner.outputs()
    assert outputs["verdict"] == "fail"
    assert outputs["failed-targets"] == QUAY
    report = json.loads(Path(outputs["report"]).read_text())
    assert [(t["target"], t["verdict"]) for t in report["targets"]] == [
        (QUAY, "fail"),
        (f"{registry.host}/acme/copy:3.12", "pass"),
    ]
    assert outputs["sarif"] == str(runner.work / "gate.sarif")
    assert json.loads(Path(outputs["sarif"]).read_text())["version"] == "2.1.0"
    summary = runner.summary.read_text()
    assert summary.startswith("## ❌ registry-gate: fail")
    assert f"| {QUAY} | `quay` | ❌ fail | 2 | 0 | 0 |" in summary
    assert f"| {registry.host}/acme/copy:3.12 | `distribution` | ✅ pass |" in summary
    annotations = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 2 and all("mixed-oci-index" in a for a in annotations)
    assert f"registry-gate: FAIL {QUAY} [quay, host quay.io]" in proc.stdout


def test_action_passes_with_a_waiver_in_the_config_input(mixed: str, tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    expires = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    (runner.work / "gate.yaml").write_text(
        f"targets: [{{ref: {QUAY}}}]\n"
        f"waivers: [{{rule: mixed-oci-index, target: 'quay.io/*', reason: rollout, expires: '{expires}'}}]\n"
    )
    proc = runner.run_action(image=f"docker://{mixed}", config="gate.yaml", **{"tls-verify": "false"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outputs = runner.outputs()
    assert (outputs["verdict"], outputs["failed-targets"], outputs["sarif"]) == ("pass", "", "")
    assert "| `mixed-oci-index` | waived error |" in runner.summary.read_text()
    waived = [line for line in proc.stdout.splitlines() if line.startswith("::notice title=registry-gate mixed")]
    assert len(waived) == 2 and all("(waived)" in line and "rollout" in line for line in waived)


def test_action_bad_input_and_unreachable_source_are_errors(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    proc = runner.run_action(image="docker://127.0.0.1:1/x:1", **{"tls-verify": "maybe"})
    assert proc.returncode == 2
    assert runner.outputs()["verdict"] == "error"
    assert "`tls-verify` input is 'maybe'" in runner.summary.read_text()
    runner = Runner(tmp_path / "again")
    proc = runner.run_action(image="docker://127.0.0.1:1/x:1", **{"tls-verify": "false"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert runner.outputs()["verdict"] == "error"
    assert "::error title=registry-gate could not check::" in proc.stdout
    assert "could not check" in runner.summary.read_text()


def test_injection_text_in_inputs_stays_data(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    proc = runner.run_action(image='oci:$(touch pwned)";touch pwned2;"', targets="`touch pwned3`")
    assert proc.returncode == 2
    assert not any((runner.work / name).exists() for name in ("pwned", "pwned2", "pwned3"))


def test_every_input_reaches_the_script_only_through_env() -> None:
    gate_env = step("gate")["env"]
    mapped = {_EXPR.match(v).group(1) for v in gate_env.values()}  # type: ignore[union-attr]
    assert mapped == set(ACTION["inputs"])
    assert set(gate_env) == {"INPUT_" + name.upper().replace("-", "_") for name in ACTION["inputs"]}
    for path in [ROOT / "action.yml", *WORKFLOWS]:
        text = path.read_text()
        data = yaml.safe_load(text)
        steps = data["runs"]["steps"] if "runs" in data else [s for j in data["jobs"].values() for s in j["steps"]]
        for s in steps:
            assert "${{ inputs." not in s.get("run", ""), (path, s.get("name"))
            assert "${{" not in s.get("run", ""), (path, s.get("name"))


def test_actionlint_is_clean() -> None:
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert actionlint, "actionlint is a test dependency (pip install -e .[test])"
    assert WORKFLOWS
    proc = subprocess.run([actionlint, *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any("uses: ./" in w.read_text() for w in WORKFLOWS)


def test_pre_commit_hook_definition() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks == [
        {
            "id": "registry-gate",
            "name": "registry-gate (check the config's images before git push)",
            "description": "Checks every `images:` entry of .registry-gate.yaml against its targets.",
            "entry": "registry-gate hook run",
            "language": "python",
            "pass_filenames": False,
            "always_run": True,
            "stages": ["pre-push", "manual"],
        }
    ]


def test_install_step_builds_a_private_venv_from_the_action_path(tmp_path: Path) -> None:
    runner = Runner(tmp_path, venv=False)
    proc = runner.run_step(step(name="Install registry-gate"), {})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("registry-gate 0.1.0 (skopeo ")
    installed = runner.temp / "registry-gate-venv" / "bin" / "registry-gate"
    assert installed.is_file() and not installed.is_symlink()


def test_missing_skopeo_without_sudo_is_a_clear_error(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc = runner.run_step(step(name="Make sure skopeo is installed"), {}, {"PATH": str(empty)})
    assert proc.returncode == 2
    assert proc.stdout.startswith("::error title=registry-gate::skopeo is not installed and cannot be installed here")
