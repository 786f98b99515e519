"""`--format json`: the versioned contract `registry-gate/report/v1`.

Waived findings (config waivers) are not in a target's `findings` but in its own `waived` list, each with the
same keys plus `waiver: {reason, expires}`. So a v1 consumer that reads `findings` and `verdict` keeps seeing
exactly what counts toward the verdict; the new key is additive.
"""

from __future__ import annotations

import json
from typing import Any

from gate import __version__
from gate.engine import Finding
from gate.report import Report

SCHEMA = "registry-gate/report/v1"


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity,
        "path": f.path,
        "digest": f.digest,
        "platform": f.platform,
        "message": f.message,
        "fix": f.fix,
        "sources": list(f.sources),
    }


def as_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "registry-gate", "version": __version__},
        "source": report.source,
        "digest": report.digest,
        "mediaType": report.media_type,
        "notices": report.notices,
        "fail_on": report.fail_on,
        "targets": [
            {
                "target": r.target.text,
                "profile": r.effective.label,
                "chosen_by": r.target.chosen_by,
                "verdict": r.verdict,
                "notices": r.notices,
                "findings": [_finding(f) for f in r.findings if f.waived is None],
                "waived": [
                    {**_finding(f), "waiver": {"reason": f.waived.reason, "expires": f.waived.expires}}
                    for f in r.findings
                    if f.waived is not None
                ],
            }
            for r in report.results
        ],
    }


def render(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2) + "\n"
