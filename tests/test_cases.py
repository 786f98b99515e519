"""The handed manifest cases and the image-spec conformance vectors as regression data (issue #3, part A).

Every check in every case.yaml runs through the CLI (typer's CliRunner, in-process) exactly as the shared scorer
runs it: the case laid out as an OCI image layout with tag `case`, `check oci:<layout>:case --target/--profile ...
--format json`; `source: file` cases are checked as a saved manifest. Beyond the verdict, a case that fails or
warns must do so for the reason of its failure class: every finding at the verdict's severity comes from a rule
of that class, so a case is never right by accident.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gate.cli import app

HERE = Path(__file__).parent
CASES = sorted(p for p in (HERE / "cases").iterdir() if (p / "case.yaml").is_file())
VECTORS = sorted(p for p in (HERE / "conformance").iterdir() if (p / "case.yaml").is_file())

# The rules that may decide a case of each failure class (case.yaml `failure_class`).
CLASS_RULES = {
    "mixed-index": {"mixed-oci-index", "mixed-docker-list"},
    "nested-index": {"nested-index"},
    "index-children-not-manifests": {"index-entry-not-manifest", "index-entry-no-platform"},
    "invalid-platform": {"platform-unknown-architecture", "platform-unknown-os", "platform-bad-variant"},
    "attestation-index": {"attestation-entries", "index-at-tag"},
    "oci11-subject": {"subject-platform", "subject-field", "artifact-type", "empty-config"},
    "docker-types-refused": {"manifest-type-not-accepted"},
    "oci-types-refused": {"manifest-type-not-accepted"},
    "size-limits": {"layer-count", "manifest-size"},
    "foreign-layers": {"foreign-layers"},
    "zstd": {"docker-v2s2-undefined-types", "zstd-layers"},
    "schema1": {"schema1"},
    "missing-mediatype": {"missing-media-type", "docker-missing-media-type"},
    "duplicate-platform": {"duplicate-platform"},
    "empty-index": {"empty-index"},
}


def guess_media_type(parsed: object) -> str:
    """The type the scorer gives the layout's entry: the body's own, else what a registry would serve."""
    if not isinstance(parsed, dict):
        return "application/vnd.oci.image.manifest.v1+json"
    if parsed.get("mediaType"):
        return str(parsed["mediaType"])
    if parsed.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+prettyjws"
    if "manifests" in parsed:
        return "application/vnd.oci.image.index.v1+json"
    config = parsed.get("config") if isinstance(parsed.get("config"), dict) else {}
    if str(config.get("mediaType", "")).startswith("application/vnd.docker."):
        return "application/vnd.docker.distribution.manifest.v2+json"
    return "application/vnd.oci.image.manifest.v1+json"


def write_layout(folder: Path, root: Path) -> None:
    """The case as an OCI layout: children and blobs by their sha256, the top tagged `case`."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for sub in ("children", "blobs"):
        if (folder / sub).is_dir():
            for item in (folder / sub).iterdir():
                data = item.read_bytes()
                (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    top = (folder / "top.json").read_bytes()
    (blobs / hashlib.sha256(top).hexdigest()).write_bytes(top)
    try:
        media_type = guess_media_type(json.loads(top))
    except ValueError:
        media_type = guess_media_type(None)
    entry = {
        "mediaType": media_type,
        "digest": f"sha256:{hashlib.sha256(top).hexdigest()}",
        "size": len(top),
        "annotations": {"org.opencontainers.image.ref.name": "case"},
    }
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def load(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((folder / "case.yaml").read_text())
    return data


def checks(folders: list[Path]) -> list[Any]:
    out = []
    for folder in folders:
        meta = load(folder)
        if meta.get("skip"):
            continue
        for i, check in enumerate(meta["checks"]):
            asked = check.get("target") or f"profile {check.get('profile')}"
            out.append(pytest.param(folder, check, id=f"{folder.name}[{i}] {asked}"))
    return out


def run(folder: Path, check: dict[str, Any], tmp_path: Path) -> tuple[int, dict[str, Any] | None, str]:
    if load(folder).get("source") == "file":
        source = str(folder / "top.json")
    else:
        write_layout(folder, tmp_path / "layout")
        source = f"oci:{tmp_path / 'layout'}:case"
    args = ["check", source, "--format", "json"]
    args += ["--target", check["target"]] if check.get("target") else ["--profile", check["profile"]]
    result = CliRunner().invoke(app, args)
    try:
        return result.exit_code, json.loads(result.stdout), result.output
    except ValueError:
        return result.exit_code, None, result.output


def target_entry(report: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    targets = report["targets"]
    if check.get("target"):
        ref = check["target"].split("=", 1)[0]
        matches = [t for t in targets if t["target"] == ref]
    else:
        name = check["profile"].split("@")[0]
        matches = [t for t in targets if str(t["profile"]).split("@")[0] == name]
    assert len(matches) == 1, targets
    entry: dict[str, Any] = matches[0]
    return entry


def wanted(check: dict[str, Any]) -> list[str]:
    expected = check["expected"]
    return [str(e).lower() for e in (expected if isinstance(expected, list) else [expected])]


@pytest.mark.parametrize(("folder", "check"), checks(CASES))
def test_case_verdict_and_reason(folder: Path, check: dict[str, Any], tmp_path: Path) -> None:
    code, report, output = run(folder, check, tmp_path)
    assert report is not None, output
    entry = target_entry(report, check)
    assert entry["verdict"] in wanted(check), entry["findings"]
    assert code == (1 if entry["verdict"] == "fail" else 0)
    severity = {"fail": "error", "warn": "warning"}.get(entry["verdict"])
    failure_class = load(folder).get("failure_class")
    if severity and failure_class in CLASS_RULES:
        deciding = {f["rule"] for f in entry["findings"] if f["severity"] == severity}
        assert deciding and deciding <= CLASS_RULES[failure_class], (failure_class, deciding)
        for finding in entry["findings"]:
            assert finding["sources"], finding


@pytest.mark.parametrize(("folder", "check"), checks(VECTORS))
def test_conformance_vector(folder: Path, check: dict[str, Any], tmp_path: Path) -> None:
    code, report, output = run(folder, check, tmp_path)
    if report is None:
        assert check.get("accept_error") and "fail" in wanted(check), output
        assert code in (2, 3) and "Traceback" not in output
        return
    verdict = target_entry(report, check)["verdict"]
    assert verdict in wanted(check), report


def test_every_case_and_vector_is_here() -> None:
    assert len(CASES) >= 22 and len(VECTORS) == 24
    for folder in CASES:
        meta = load(folder)
        assert meta["checks"] and (folder / "top.json").is_file()
