"""`--format json`: the versioned contract `registry-gate/report/v1`."""

from __future__ import annotations

import json
from typing import Any

from gate import __version__
from gate.report import Report

SCHEMA = "registry-gate/report/v1"


def as_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "registry-gate", "version": __version__},
        "source": report.source,
        "digest": report.digest,
        "mediaType": report.media_type,
        "notices": report.notices,
        "targets": [
            {
                "target": r.target.text,
                "profile": r.effective.label,
                "chosen_by": r.target.chosen_by,
                "verdict": r.verdict,
                "notices": r.notices,
                "findings": [
                    {
                        "rule": f.rule,
                        "severity": f.severity,
                        "path": f.path,
                        "digest": f.digest,
                        "platform": f.platform,
                        "message": f.message,
                        "fix": f.fix,
                        "sources": list(f.sources),
                    }
                    for f in r.findings
                ],
            }
            for r in report.results
        ],
    }


def render(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2) + "\n"
