"""Renderers: one module per output format, each `render(report) -> str`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from gate.engine import Result, printable

FORMATS = ("text", "json", "sarif", "junit", "github", "markdown")


@dataclass
class Report:
    source: str
    digest: str
    media_type: str | None
    results: list[Result]
    notices: list[str] = field(default_factory=list)
    fail_on: str = "error"
    """error or warning: which verdicts fail the gate (junit counts those as failures)."""

    def __post_init__(self) -> None:
        if self.media_type is not None:
            self.media_type = printable(self.media_type)  # the document names it: never print it raw

    def failing(self, result: Result) -> bool:
        return result.verdict == "fail" or (self.fail_on == "warning" and result.verdict == "warn")


def render(report: Report, fmt: str) -> str:
    module = importlib.import_module(f"gate.report.{fmt}_format")
    text: str = module.render(report)
    return text
