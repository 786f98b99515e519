"""`--format github`: GitHub Actions workflow commands, chosen by default when GITHUB_ACTIONS=true.

A verdict line per target, then one annotation per finding (`::error`, `::warning`, `::notice` for info and
waived findings). GitHub shows at most 10 annotations of each level per step, so past 9 of a level the 10th says
how many more there are and points to the job summary.
"""

from __future__ import annotations

from gate.engine import Finding, Result
from gate.report import Report

LIMIT = 10
_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(result: Result, f: Finding) -> tuple[str, str]:
    name = result.target.text or f"profile {result.effective.label}"
    level = "notice" if f.waived else _LEVEL[f.severity]
    title = f"registry-gate {f.rule}" + (" (waived)" if f.waived else "") + f": {name}"
    parts = [f.message]
    if f.path:
        parts.append(f"at {f.path}" + (f" ({f.digest} {f.platform or ''})".rstrip() if f.digest else ""))
    if f.waived:
        parts.append(f"waived until {f.waived.expires}: {f.waived.reason}")
    if f.fix:
        parts.append(f"fix: {f.fix}")
    if f.sources:
        parts.append(f"see: {f.sources[0]}")
    return level, f"::{level} title={escape_property(title)}::{escape_data('; '.join(parts))}"


def render(report: Report) -> str:
    out = [f"registry-gate: source {report.source} ({report.digest})"]
    out += [f"registry-gate: note: {n}" for n in report.notices]
    by_level: dict[str, list[str]] = {"error": [], "warning": [], "notice": []}
    for r in report.results:
        name = r.target.text or f"profile {r.effective.label}"
        out.append(f"registry-gate: {r.verdict.upper()} {name} [{r.effective.label}, {r.target.chosen_by}]")
        out += [f"registry-gate: note: {n}" for n in r.notices]
        for f in r.findings:
            level, line = _annotation(r, f)
            by_level[level].append(line)
    for level, lines in by_level.items():
        if len(lines) <= LIMIT:
            out += lines
            continue
        out += lines[: LIMIT - 1]
        more = len(lines) - (LIMIT - 1)
        out.append(
            f"::{level} title=registry-gate::{more} more {level} findings are not annotated: "
            "see the job summary (or the JSON report) for all of them"
        )
    return "\n".join(out) + "\n"
