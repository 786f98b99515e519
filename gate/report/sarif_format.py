"""`--format sarif`: SARIF 2.1.0 for code scanning (GitHub upload-sarif and other SARIF viewers).

One SARIF rule per gate rule that ran (help = its doc, fix and sources); one result per finding, whose logical
locations are the target image reference and the manifest path (`index.manifests[2].config.mediaType`).
A waived finding is a result with an accepted external suppression. Code scanning needs a repository file per
result: see `artifact_uri`.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

from gate import __version__
from gate.engine import Finding, Result
from gate.report import Report
from gate.rules import Rule, catalog

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {"error": "error", "warning": "warning", "info": "note"}
_EXPIRED = {
    "id": "waiver-expired",
    "name": "WaiverExpired",
    "shortDescription": {"text": "A waiver in the config file has expired."},
    "fullDescription": {"text": "A waiver in .registry-gate.yaml is past its `expires` date, so it no longer applies."},
    "help": {"text": "Fix the waived findings, or renew the waiver's `expires` date."},
    "defaultConfiguration": {"level": "error"},
}


def _camel(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _rule(rule: Rule) -> dict[str, Any]:
    doc = inspect.cleandoc(rule.doc)
    lines = [doc]
    if rule.fix:
        lines.append(f"Fix: {rule.fix}")
    if rule.sources:
        lines.append("Sources:\n" + "\n".join(f"- {s}" for s in rule.sources))
    out: dict[str, Any] = {
        "id": rule.id,
        "name": _camel(rule.id),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": doc},
        "help": {"text": "\n\n".join(lines), "markdown": "\n\n".join(lines)},
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
        "properties": {"tags": [rule.family, "container-registry"], "sources": list(rule.sources)},
    }
    if rule.sources:
        out["helpUri"] = rule.sources[0]
    return out


def artifact_uri(source: str, cwd: Path | None = None) -> str:
    """A repository-relative file for code scanning (it needs one per result): the local source (an OCI layout's
    index.json, an archive, a saved manifest) when it is under the working directory, else the config file name,
    where a waiver for the finding would be written."""
    path: str | None = None
    if source.startswith("oci:"):
        path = source[4:].split(":", 1)[0] + "/index.json"
    elif source.startswith("oci-archive:"):
        path = source[12:].split(":", 1)[0]
    elif not source.startswith("docker://"):
        path = source
    if path:
        here = (cwd or Path.cwd()).resolve()
        try:
            return (here / path).resolve().relative_to(here).as_posix()
        except ValueError:
            pass
    return ".registry-gate.yaml"


def _fingerprint(result: Result, f: Finding) -> str:
    key = "\0".join((result.target.text or result.effective.label, f.rule, f.path, f.digest or ""))
    return hashlib.sha256(key.encode()).hexdigest()


def _result(report: Report, result: Result, f: Finding, index: int) -> dict[str, Any]:
    name = result.target.text or f"profile {result.effective.label}"
    text = f"{name} [{result.effective.label}]: {f.message}"
    if f.platform:
        text += f" (entry {f.digest} {f.platform})"
    if f.fix:
        text += f". Fix: {f.fix}"
    location: dict[str, Any] = {
        "logicalLocations": [
            {"name": name, "kind": "resource", "fullyQualifiedName": name},
            {"name": f.path or "(top)", "kind": "object", "fullyQualifiedName": f"{report.source}#{f.path}"},
        ]
    }
    location["physicalLocation"] = {"artifactLocation": {"uri": artifact_uri(report.source)}}
    out: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": _LEVELS[f.severity],
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"registryGate/v1": _fingerprint(result, f)},
        "properties": {
            "target": result.target.text,
            "profile": result.effective.label,
            "verdict": result.verdict,
            "digest": f.digest,
            "platform": f.platform,
            "sources": list(f.sources),
        },
    }
    if f.waived:
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{f.waived.reason} (until {f.waived.expires}, {f.waived.origin})",
            }
        ]
    return out


def as_dict(report: Report) -> dict[str, Any]:
    known = catalog()
    ran: list[str] = []
    for r in report.results:
        for rule_id in [s.rule.id for s in r.effective.active()] + [f.rule for f in r.findings]:
            if rule_id not in ran:
                ran.append(rule_id)
    rules = [_rule(known[i]) if i in known else _EXPIRED for i in ran]
    index = {rule["id"]: n for n, rule in enumerate(rules)}
    results = [_result(report, r, f, index[f.rule]) for r in report.results for f in r.findings]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "registry-gate",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"registry-gate/{report.source}"},
                "results": results,
                "properties": {"source": report.source, "digest": report.digest, "notices": report.notices},
            }
        ],
    }


def render(report: Report) -> str:
    import json

    return json.dumps(as_dict(report), indent=2) + "\n"
