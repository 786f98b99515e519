"""Renderers: one module per output format, each `render(report) -> str`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from gate.engine import Result

FORMATS = ("text", "json")


@dataclass
class Report:
    source: str
    digest: str
    media_type: str | None
    results: list[Result]
    notices: list[str] = field(default_factory=list)


def render(report: Report, fmt: str) -> str:
    module = importlib.import_module(f"gate.report.{fmt}_format")
    text: str = module.render(report)
    return text
