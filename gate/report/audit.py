"""The aggregate report of `audit`: `registry-gate/audit/v1` (JSON) or the text reports one after another.

`registry-gate/audit/v1` = {"schema", "tool", "shard", "exit_code", "totals": {"sources", "pass", "warn", "fail",
"error"}, "reports": [one unchanged `registry-gate/report/v1` document per source that could be checked],
"errors": [{"source", "exit_code", "kind", "message", "fix"} per source that could not]}. Both lists keep the
order of the sources.
"""

from __future__ import annotations

import json
from typing import Any

from gate import __version__
from gate.audit import Outcome
from gate.errors import InspectError
from gate.report import json_format, text_format

SCHEMA = "registry-gate/audit/v1"


def totals(outcomes: list[Outcome]) -> dict[str, int]:
    counts = {"sources": len(outcomes), "pass": 0, "warn": 0, "fail": 0, "error": 0}
    for o in outcomes:
        counts[o.verdict()] += 1
    return counts


def as_dict(outcomes: list[Outcome], exit_code: int, shard: tuple[int, int] | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "registry-gate", "version": __version__},
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "exit_code": exit_code,
        "totals": totals(outcomes),
        "reports": [json_format.as_dict(o.report) for o in outcomes if o.report is not None],
        "errors": [
            {
                "source": o.source,
                "exit_code": o.error.exit_code,
                "kind": o.error.kind if isinstance(o.error, InspectError) else "usage",
                "message": o.error.problem,
                "fix": o.error.fix,
            }
            for o in outcomes
            if o.error is not None
        ],
    }


def render(outcomes: list[Outcome], fmt: str, exit_code: int, shard: tuple[int, int] | None) -> str:
    if fmt == "json":
        return json.dumps(as_dict(outcomes, exit_code, shard), indent=2) + "\n"
    parts = []
    for o in outcomes:
        if o.report is not None:
            parts.append(text_format.render(o.report))
        elif o.error is not None:
            parts.append(f"source  {o.source}\nERROR   {o.error}\n")
    counts = totals(outcomes)
    summary = ", ".join(f"{counts[k]} {k}" for k in ("pass", "warn", "fail", "error"))
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    parts.append(f"audit   {counts['sources']} sources{where}: {summary}; exit {exit_code}\n")
    return "\n".join(parts)
