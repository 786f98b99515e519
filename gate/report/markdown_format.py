"""`--format markdown`: a summary for pull requests and the GitHub job summary.

`cap()` keeps a document under GitHub's 1 MiB step-summary limit, cutting at a line and saying so.
"""

from __future__ import annotations

from gate.engine import Finding, Result
from gate.report import Report

SUMMARY_LIMIT = 1024 * 1024 - 4096
"""GitHub refuses a step summary over 1 MiB; keep room for the note and for other steps' lines."""
_ICON = {"fail": "❌", "warn": "⚠️", "pass": "✅"}


def cell(text: str | None) -> str:
    if not text:
        return ""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def code(text: str | None) -> str:
    """A code span in a table cell: a backslash is literal there (doubling it would change a pasted path); only
    the cell's own `|` needs escaping."""
    if not text:
        return ""
    fence = "``" if "`" in text else "`"
    body = text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return f"{fence}{body}{fence}"


def _overall(report: Report) -> str:
    verdicts = {r.verdict for r in report.results}
    return "fail" if "fail" in verdicts else "warn" if "warn" in verdicts else "pass"


def _finding_row(f: Finding) -> str:
    severity = f"waived {f.severity}" if f.waived else f.severity
    entry = f"{code(f.digest)} {cell(f.platform)}".strip() if f.digest else ""
    why = cell(f.message)
    if f.waived:
        why += f"<br>**waived** until {f.waived.expires}: {cell(f.waived.reason)}"
    if f.sources:
        why += "<br>" + " ".join(f"[source {n}]({s})" for n, s in enumerate(f.sources, 1))
    return f"| `{f.rule}` | {severity} | {code(f.path)} | {entry} | {why} | {code(f.fix)} |"


def _target(r: Result) -> list[str]:
    name = r.target.text or f"profile {r.effective.label}"
    out = ["", f"### {_ICON[r.verdict]} {r.verdict.upper()} {cell(name)}", ""]
    out.append(f"Profile `{r.effective.label}` ({cell(r.target.chosen_by)}).")
    out += [f"> {cell(n)}" for n in r.notices]
    if r.findings:
        out += ["", "| Rule | Severity | Path | Entry | Why | Fix |", "| --- | --- | --- | --- | --- | --- |"]
        out += [_finding_row(f) for f in r.findings]
    else:
        out += ["", "No findings."]
    return out


def render(report: Report) -> str:
    overall = _overall(report)
    out = [f"## {_ICON[overall]} registry-gate: {overall}", ""]
    out.append(
        f"Source {code(report.source)}, digest {code(report.digest)} ({cell(report.media_type) or 'no mediaType'})."
    )
    out += [f"> {cell(n)}" for n in report.notices]
    out += ["", "| Target | Profile | Verdict | Errors | Warnings | Waived |", "| --- | --- | --- | --- | --- | --- |"]
    for r in report.results:
        active = [f for f in r.findings if f.waived is None]
        errors = sum(f.severity == "error" for f in active)
        warnings = sum(f.severity == "warning" for f in active)
        waived = len(r.findings) - len(active)
        name = r.target.text or f"profile {r.effective.label}"
        verdict = f"{_ICON[r.verdict]} {r.verdict}"
        out.append(f"| {cell(name)} | `{r.effective.label}` | {verdict} | {errors} | {warnings} | {waived} |")
    for r in report.results:
        out += _target(r)
    return "\n".join(out) + "\n"


def cap(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """`text` if it fits in `limit` bytes, else its first lines that fit and a note that it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    note = (
        "\n\n> **Summary cut**: it was longer than GitHub's 1 MiB job-summary limit. "
        "The full report is in the action's `report` output (JSON) and in the job log.\n"
    )
    head = data[: limit - len(note.encode())].decode("utf-8", "ignore")
    head = head[: head.rfind("\n")] if "\n" in head else head
    return head + note
