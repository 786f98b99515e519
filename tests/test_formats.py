"""Output formats: SARIF 2.1.0 (validated against the vendored OASIS schema), JUnit, GitHub, Markdown, outputs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import factory as f
import jsonschema
import pytest
from gatecli import run_gate, user_env

from gate.engine import evaluate, plan_targets
from gate.errors import UsageError
from gate.policy import Registry
from gate.report import Report, render
from gate.report.markdown_format import cap
from gate.report.outputs import plan
from gate.report.sarif_format import artifact_uri
from gate.sources import open_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = f"oci:{ROOT / 'examples' / 'python-3.12'}:3.12"
QUAY, HUB = "quay.io/acme/python:3.12", "docker.io/acme/python:3.12"
# tests/data/sarif-schema-2.1.0.json: the SARIF 2.1.0 schema (draft-04) as published in npm @microsoft/jest-sarif
# 1.0.0-beta.0 (lib/schemas/sarif-2.1.0-rtm.5.json, MIT); rtm.5 is the schema the OASIS 2.1.0 standard shipped.
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())


def gate(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, cwd=cwd, env=user_env(cwd, **env))


def waive(tmp_path: Path) -> None:
    expires = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    (tmp_path / ".registry-gate.yaml").write_text(
        f"waivers:\n  - rule: mixed-oci-index\n    target: quay.io/*\n    reason: rollout\n    expires: {expires}\n"
    )


def sarif(tmp_path: Path) -> dict[str, Any]:
    proc = gate("check", EXAMPLE, "-t", QUAY, "-t", HUB, "--output", "sarif=out.sarif", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    data: dict[str, Any] = json.loads((tmp_path / "out.sarif").read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(data)
    return data


def test_sarif_validates_and_carries_rules_and_logical_locations(tmp_path: Path) -> None:
    data = sarif(tmp_path)
    run = data["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)) and "mixed-oci-index" in ids
    mixed = rules[ids.index("mixed-oci-index")]
    assert mixed["helpUri"].startswith("https://") and "--format oci" in mixed["help"]["text"]
    assert all(s.startswith("https://") for s in mixed["properties"]["sources"])
    errors = [r for r in run["results"] if r["level"] == "error"]
    assert [r["ruleId"] for r in errors] == ["mixed-oci-index", "mixed-oci-index"]
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
    names = [[loc["name"] for loc in r["locations"][0]["logicalLocations"]] for r in errors]
    assert names == [[QUAY, "manifests[4].mediaType"], [QUAY, "manifests[5].mediaType"]]
    uri = errors[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == ".registry-gate.yaml"  # the layout is outside the working directory
    assert "suppressions" not in errors[0]


def test_sarif_marks_waived_results_as_suppressed(tmp_path: Path) -> None:
    waive(tmp_path)
    run = sarif(tmp_path)["runs"][0]
    mixed = [r for r in run["results"] if r["ruleId"] == "mixed-oci-index"]
    assert len(mixed) == 2
    assert all(r["suppressions"][0]["status"] == "accepted" for r in mixed)
    assert "rollout" in mixed[0]["suppressions"][0]["justification"]


def junit(tmp_path: Path, *args: str) -> tuple[int, ET.Element]:
    proc = gate("check", EXAMPLE, "-t", QUAY, "-t", HUB, "--format", "junit", *args, cwd=tmp_path)
    return proc.returncode, ET.fromstring(proc.stdout)


def test_junit_counts_failures_per_target_and_rule(tmp_path: Path) -> None:
    code, root = junit(tmp_path)
    assert code == 1
    quay, hub = root.findall("testsuite")
    assert root.get("failures") == "1" and quay.get("failures") == "1" and hub.get("failures") == "0"
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == ["mixed-oci-index"]
    assert (
        int(root.get("tests", "0"))
        == len(list(root.iter("testcase")))
        == int(quay.get("tests", "0")) + int(hub.get("tests", "0"))
    )
    assert all(c.get("classname") in (QUAY, HUB) for c in root.iter("testcase"))


def test_junit_skips_waived_and_counts_warnings_with_fail_on_warning(tmp_path: Path) -> None:
    waive(tmp_path)
    code, root = junit(tmp_path)
    assert code == 0 and root.get("failures") == "0" and root.get("skipped") == "1"
    skipped = next(c for c in root.iter("testcase") if c.find("skipped") is not None)
    assert skipped.get("name") == "mixed-oci-index"
    assert "rollout" in (skipped.find("skipped").get("message") or "")  # type: ignore[union-attr]
    layout = f.write_layout(tmp_path / "empty", "1", f.index([]))
    for fail_on, code, failures in (("warning", 1, "1"), ("error", 0, "0")):
        proc = gate("check", f"oci:{layout}:1", "--profile", "oci", "-f", "junit", "--fail-on", fail_on, cwd=tmp_path)
        root = ET.fromstring(proc.stdout)
        assert (proc.returncode, root.get("failures")) == (code, failures)
        case = next(c for c in root.iter("testcase") if c.get("name") == "empty-index")
        assert (case.find("failure") is not None) == (fail_on == "warning")


def test_github_format_is_the_default_in_actions(tmp_path: Path) -> None:
    proc = gate("check", EXAMPLE, "-t", QUAY, cwd=tmp_path, GITHUB_ACTIONS="true")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("registry-gate: source oci:")
    assert f"registry-gate: FAIL {QUAY} [quay, host quay.io]" in lines
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 2
    assert errors[0].startswith("::error title=registry-gate mixed-oci-index%3A quay.io/acme/python%3A3.12::")
    assert "fix: skopeo copy --all --format oci" in errors[0]


def _report(copies: int) -> Report:
    registry = Registry()
    image = open_source(EXAMPLE)
    result = evaluate(image, plan_targets([QUAY], [], registry)[0], registry)
    errors = [f for f in result.findings if f.severity == "error"]
    result.findings = [replace(errors[0], path=f"manifests[{n}]", message=f"m{n}\nline") for n in range(copies)]
    return Report(image.source, image.top.digest, image.top.type, [result])


def test_github_annotations_are_capped_at_ten_per_level_with_a_pointer() -> None:
    out = render(_report(25), "github").splitlines()
    errors = [line for line in out if line.startswith("::error ")]
    assert len(errors) == 10
    assert errors[-1] == (
        "::error title=registry-gate::16 more error findings are not annotated: "
        "see the job summary (or the JSON report) for all of them"
    )
    assert "m0%0Aline" in errors[0]  # newlines escaped
    few = render(_report(10), "github").splitlines()
    assert len([line for line in few if line.startswith("::error ")]) == 10


def test_markdown_summary_and_its_cap(tmp_path: Path) -> None:
    text = render(_report(3), "markdown")
    assert text.startswith("## ❌ registry-gate: fail")
    assert f"| {QUAY} | `quay` | ❌ fail | 3 | 0 | 0 |" in text
    assert "| `mixed-oci-index` | error | `manifests[0]` |" in text
    assert "m0<br>line" in text
    big = render(_report(4000), "markdown")
    assert len(big.encode()) > 1024 * 1024
    capped = cap(big)
    assert len(capped.encode()) < 1024 * 1024
    assert capped.rstrip().endswith("The full report is in the action's `report` output (JSON) and in the job log.")
    assert cap(text) == text


def test_several_formats_in_one_run(tmp_path: Path) -> None:
    proc = gate(
        "check",
        EXAMPLE,
        "-t",
        QUAY,
        "--format",
        "json",
        "--format",
        "sarif",
        "--output",
        "r.json",
        "--output",
        "r.sarif",
        cwd=tmp_path,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == "registry-gate/report/v1"
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"
    proc = gate("check", EXAMPLE, "-t", QUAY, "--output", "junit=out/j.xml", cwd=tmp_path)
    assert proc.stdout.startswith("source  oci:")  # text still on stdout
    assert ET.parse(tmp_path / "out" / "j.xml").getroot().tag == "testsuites"


def test_output_planning() -> None:
    assert plan([], [], {}) == [("text", None)]
    assert plan([], [], {"GITHUB_ACTIONS": "true"}) == [("github", None)]
    assert plan(["json", "sarif"], ["a", "b"], {}) == [("json", "a"), ("sarif", "b")]
    assert plan(["text"], ["json=r.json"], {}) == [("json", "r.json"), ("text", None)]
    with pytest.raises(UsageError, match="would all go to stdout"):
        plan(["json", "sarif"], [], {})
    with pytest.raises(UsageError, match="has no --format to pair with"):
        plan([], ["report.json"], {})
    with pytest.raises(UsageError, match="is not one of"):
        plan(["xml"], [], {})


def test_bad_format_is_exit_2(tmp_path: Path) -> None:
    proc = gate("check", EXAMPLE, "--format", "yaml", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("registry-gate: error: --format 'yaml' is not one of text, json, sarif")


def test_sarif_artifact_uri_is_repository_relative(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    assert artifact_uri(f"oci:{tmp_path}/build/layout:1.0", tmp_path) == "build/layout/index.json"
    assert artifact_uri("oci-archive:build/app.tar:1", tmp_path) == "build/app.tar"
    assert artifact_uri("docker://quay.io/a/b:1", tmp_path) == ".registry-gate.yaml"
    assert artifact_uri("oci:/elsewhere/layout", tmp_path) == ".registry-gate.yaml"


def test_output_dash_is_stdout() -> None:
    assert plan(["json"], ["-"], env={}) == [("json", None)]
    assert plan(["json", "sarif"], ["-", "r.sarif"], env={}) == [("json", None), ("sarif", "r.sarif")]
    with pytest.raises(UsageError, match="would all go to stdout"):
        plan(["json", "sarif"], ["-"], env={})
