"""The config file: discovery, strict validation, registries map, waivers (issue #4, item 3)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from gatecli import run_gate, user_env

from gate.config import discover

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = f"oci:{ROOT / 'examples' / 'python-3.12'}:3.12"
QUAY = "quay.io/acme/python:3.12"


def gate(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, cwd=cwd, env=user_env(cwd, **env))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def waiver_config(expires: dt.date, target: str = "quay.io/acme/*") -> str:
    return (
        f"targets:\n  - ref: {QUAY}\n"
        "waivers:\n"
        "  - rule: mixed-oci-index\n"
        f"    target: '{target}'\n"
        "    reason: Quay 3.18 rollout, PROJQUAY-11637\n"
        f"    expires: {expires.isoformat()}\n"
    )


def check_json(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = gate("check", EXAMPLE, "--format", "json", *args, cwd=tmp_path)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_live_waiver_passes_the_quay_target_and_lists_the_finding_as_waived(tmp_path: Path) -> None:
    write(tmp_path / ".registry-gate.yaml", waiver_config(dt.date.today() + dt.timedelta(days=30)))
    code, data = check_json(tmp_path)
    assert code == 0
    quay = data["targets"][0]
    assert (quay["target"], quay["verdict"]) == (QUAY, "pass")
    assert [f["rule"] for f in quay["findings"] if f["severity"] == "error"] == []
    assert [w["rule"] for w in quay["waived"]] == ["mixed-oci-index", "mixed-oci-index"]
    assert quay["waived"][0]["waiver"] == {
        "reason": "Quay 3.18 rollout, PROJQUAY-11637",
        "expires": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
    }
    assert data["notices"] == [f"config: {tmp_path / '.registry-gate.yaml'}"]
    text = gate("check", EXAMPLE, cwd=tmp_path)
    assert text.returncode == 0
    assert "waived (error): Quay 3.18 rollout, PROJQUAY-11637" in text.stdout
    assert f"note    config: {tmp_path / '.registry-gate.yaml'}" in text.stdout


def test_expired_waiver_fails_and_says_so(tmp_path: Path) -> None:
    yesterday = dt.date.today() - dt.timedelta(days=1)
    write(tmp_path / ".registry-gate.yaml", waiver_config(yesterday))
    code, data = check_json(tmp_path)
    assert code == 1
    quay = data["targets"][0]
    assert quay["verdict"] == "fail" and quay["waived"] == []
    rules = [f["rule"] for f in quay["findings"] if f["severity"] == "error"]
    assert rules.count("mixed-oci-index") == 2 and "waiver-expired" in rules
    expired = next(f for f in quay["findings"] if f["rule"] == "waiver-expired")
    assert f"expired on {yesterday.isoformat()}" in expired["message"]
    assert ".registry-gate.yaml:4" in expired["message"]


def test_no_waivers_ignores_them_and_a_waiver_for_another_target_does_not_apply(tmp_path: Path) -> None:
    write(tmp_path / ".registry-gate.yaml", waiver_config(dt.date.today() + dt.timedelta(days=30)))
    code, data = check_json(tmp_path, "--no-waivers")
    assert code == 1 and data["targets"][0]["waived"] == []
    assert "--no-waivers: the config's 1 waiver(s) were ignored" in data["notices"]
    write(tmp_path / ".registry-gate.yaml", waiver_config(dt.date.today(), target="ghcr.io/*"))
    code, data = check_json(tmp_path)
    assert code == 1 and data["targets"][0]["waived"] == []


def test_waiver_pinned_to_another_digest_does_not_apply(tmp_path: Path) -> None:
    text = waiver_config(dt.date.today() + dt.timedelta(days=1)) + "    digest: sha256:" + "0" * 64 + "\n"
    write(tmp_path / ".registry-gate.yaml", text)
    code, data = check_json(tmp_path)
    assert code == 1 and data["targets"][0]["waived"] == []


def test_registries_map_beats_the_builtin_host_table(tmp_path: Path) -> None:
    write(
        tmp_path / "cfg.yaml",
        "registries:\n  registry.corp.example: quay@3.12\n  quay.io: distribution\n",
    )
    code, data = check_json(
        tmp_path, "--config", "cfg.yaml", "--target", "registry.corp.example/app:1", "--target", QUAY
    )
    corp, quay = data["targets"]
    assert (corp["profile"], corp["chosen_by"], corp["verdict"]) == (
        "quay@3.12",
        "config registries registry.corp.example",
        "fail",
    )
    assert (quay["profile"], quay["chosen_by"], quay["verdict"]) == (
        "distribution",
        "config registries quay.io",
        "pass",
    )
    assert code == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "targets:\n  - ref: a/b:1\nwaivers:\n  - rule: mixed-oci-index\n    target: '*'\n    reson: x\n",
            "cfg.yaml:6: unknown key 'reson' in a waiver (did you mean 'reason'?)",
        ),
        ("targts: []\n", "cfg.yaml:1: unknown key 'targts' in the config (did you mean 'targets'?)"),
        (
            "waivers:\n  - rule: mixed-oci-indx\n    target: '*'\n    reason: r\n    expires: 2030-01-01\n",
            "cfg.yaml:2: unknown rule 'mixed-oci-indx' (did you mean 'mixed-oci-index'?)",
        ),
        (
            "waivers:\n  - rule: mixed-oci-index\n    target: '*'\n    reason: r\n",
            "cfg.yaml:2: a waiver needs `expires`",
        ),
        (
            "waivers:\n  - rule: mixed-oci-index\n    target: '*'\n    expires: 2030-01-01\n",
            "cfg.yaml:2: a waiver needs `reason`",
        ),
        (
            "waivers:\n  - rule: mixed-oci-index\n    target: '*'\n    reason: r\n    expires: next week\n",
            "cfg.yaml:5: expires 'next week' is not a date",
        ),
        ("registries:\n  corp.example: quay@latest\n", "cfg.yaml:2: 'quay@latest' is not PROFILE[@VERSION]"),
        ("fail-on: sometimes\n", "cfg.yaml:1: fail-on 'sometimes' is not error or warning"),
        ("targets:\n  - {}\n", "cfg.yaml:2: a target needs `ref`, `profile` or both"),
        ("policies: [missing/]\n", "does not exist"),
        ("targets: [\n", "cfg.yaml:2: not valid YAML"),
    ],
)
def test_bad_config_is_one_line_with_file_line_and_exit_2(tmp_path: Path, text: str, problem: str) -> None:
    write(tmp_path / "cfg.yaml", text)
    proc = gate("check", EXAMPLE, "--config", "cfg.yaml", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert problem in lines[0]


def test_discovery_order(tmp_path: Path) -> None:
    xdg = write(tmp_path / "xdg" / "registry-gate" / "config.yaml", "{}\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert discover(None, env, tmp_path) == xdg
    local = write(tmp_path / ".registry-gate.yml", "{}\n")
    assert discover(None, env, tmp_path) == local
    named = write(tmp_path / "named.yaml", "{}\n")
    assert discover(None, {**env, "REGISTRY_GATE_CONFIG": str(named)}, tmp_path) == named
    explicit = write(tmp_path / "explicit.yaml", "{}\n")
    assert discover(str(explicit), {**env, "REGISTRY_GATE_CONFIG": str(named)}, tmp_path) == explicit
    assert discover(None, {"HOME": str(tmp_path / "nohome")}, tmp_path / "xdg") is None
    proc = gate("check", EXAMPLE, cwd=tmp_path, REGISTRY_GATE_CONFIG=str(tmp_path / "gone.yaml"))
    assert proc.returncode == 2
    assert "REGISTRY_GATE_CONFIG" in proc.stderr and "no such file" in proc.stderr


def test_config_targets_policies_and_fail_on_and_the_command_line_beats_them(tmp_path: Path) -> None:
    write(
        tmp_path / "mine" / "strict.yaml",
        "name: strict\nsummary: attestations are errors\nkind: registry\nextends: oci\n"
        "rules:\n  attestation-entries:\n    severity: warning\n",
    )
    write(
        tmp_path / ".registry-gate.yaml",
        "targets:\n  - profile: strict\npolicies: [mine/]\nfail-on: warning\n",
    )
    code, data = check_json(tmp_path)
    assert [(t["profile"], t["verdict"]) for t in data["targets"]] == [("strict", "warn")]
    assert code == 1  # fail-on: warning from the config
    code, data = check_json(tmp_path, "--fail-on", "error")
    assert code == 0
    code, data = check_json(tmp_path, "--profile", "dockerhub")
    assert [t["profile"] for t in data["targets"]] == ["dockerhub"]


def test_config_schema_accepts_a_full_config_and_refuses_a_typo(tmp_path: Path) -> None:
    proc = gate("config", "schema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    full = yaml.safe_load(
        "images: [oci:build/layout:1]\n"
        "targets: [{ref: quay.io/a/b:1}, {profile: quay@3.12}, {ref: x/y:1, profile: dockerhub}]\n"
        "registries: {registry.corp.example: quay@3.12, '*.corp.example': distribution}\n"
        "policies: [policies/]\nfail-on: warning\n"
        "waivers: [{rule: mixed-oci-index, target: 'quay.io/*', reason: r, expires: '2030-01-31'}]\n"
    )
    jsonschema.validate(full, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"waivers": [{"rule": "mixed-oci-index", "target": "*", "reason": "r"}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"targts": []}, schema)


def test_config_path_command(tmp_path: Path) -> None:
    assert "no config file" in gate("config", "path", cwd=tmp_path).stdout
    write(tmp_path / ".registry-gate.yaml", "fail-on: error\n")
    proc = gate("config", "path", cwd=tmp_path)
    assert proc.stdout.strip() == str(tmp_path / ".registry-gate.yaml")


def test_registries_precedence_exact_port_then_host_then_longest_glob() -> None:
    from gate.engine import _mapped_host

    table = {"*.example": "a", "*.corp.example": "b", "r.corp.example": "c", "r.corp.example:5000": "d"}
    assert _mapped_host("r.corp.example:5000", table) == ("r.corp.example:5000", "d")
    assert _mapped_host("r.corp.example:443", table) == ("r.corp.example", "c")
    assert _mapped_host("x.corp.example", table) == ("*.corp.example", "b")
    assert _mapped_host("x.other.example", table) == ("*.example", "a")
    assert _mapped_host("quay.io", table) is None
