"""`--format text`: a verdict line per target, then a table of findings with their fix and sources."""

from __future__ import annotations

import os
import sys

from gate.report import Report

_COLOURS = {"fail": "31", "error": "31", "warn": "33", "warning": "33", "pass": "32", "info": "36"}


def _colour_on() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _paint(word: str, on: bool, text: str | None = None) -> str:
    text = text or word
    return f"\033[{_COLOURS[word]}m{text}\033[0m" if on and word in _COLOURS else text


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def render(report: Report) -> str:
    on = _colour_on()
    out = [f"source  {report.source}", f"digest  {report.digest}  ({report.media_type or 'no mediaType'})"]
    out += [f"note    {n}" for n in report.notices]
    for r in report.results:
        name = r.target.text or f"profile {r.effective.label}"
        out.append("")
        fails = "  (fails the gate: --fail-on warning)" if r.verdict == "warn" and report.failing(r) else ""
        out.append(
            f"{_paint(r.verdict, on, r.verdict.upper())}  {name}  [{r.effective.label}, {r.target.chosen_by}]{fails}"
        )
        out += [f"  note: {n}" for n in r.notices]
        if not r.findings:
            continue
        rows = [
            (f.rule, "waived" if f.waived else f.severity, f.path, f"{_short(f.digest)} {f.platform or ''}".strip())
            for f in r.findings
        ]
        widths = [max(len(row[i]) for row in [("RULE", "SEVERITY", "PATH", "ENTRY"), *rows]) for i in range(4)]
        header = ("RULE", "SEVERITY", "PATH", "ENTRY")
        out.append(("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths))).rstrip())
        for f, row in zip(r.findings, rows):
            cells = [
                row[0].ljust(widths[0]),
                _paint(row[1], on) + " " * (widths[1] - len(row[1])),
                row[2].ljust(widths[2]),
                row[3],
            ]
            out.append("  " + "  ".join(cells))
            out.append(f"      why: {f.message}")
            if f.waived:
                w = f.waived
                out.append(f"      waived ({f.severity}): {w.reason} (until {w.expires}, {w.origin})")
            if f.severity == "info":
                continue  # information: what and why, without a fix to apply
            if f.fix:
                out.append(f"      fix: {f.fix}")
            if f.sources:
                out.append(
                    f"      see: {f.sources[0]}" + (f" (+{len(f.sources) - 1} more)" if len(f.sources) > 1 else "")
                )
    return "\n".join(out) + "\n"
