"""Which formats go where: `--format F` (repeat) and `--output FILE` (paired in order) or `--output F=FILE`.

Formats not bound to a file go to stdout (one at most). With no `--format` at all, stdout gets `text`, or
`github` when GITHUB_ACTIONS=true.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from gate.errors import UsageError
from gate.report import FORMATS, Report, render


def _known(fmt: str, where: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"{where} {fmt!r} is not one of {', '.join(FORMATS)}", "pick one of them")
    return fmt


def plan(formats: list[str], outputs: list[str], env: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """[(format, file or None for stdout)] in the order given."""
    env = os.environ if env is None else env
    formats = [_known(f, "--format") for f in formats]
    planned: list[tuple[str, str | None]] = []
    paired = list(formats)
    for out in outputs:
        named, sep, path = out.partition("=")
        if sep and named in FORMATS:
            planned.append((named, path))
        elif paired:
            planned.append((paired.pop(0), out))
        else:
            raise UsageError(
                f"--output {out} has no --format to pair with",
                f"write --output FORMAT=FILE (FORMAT one of {', '.join(FORMATS)}) or add a --format before it",
            )
    if not formats:
        paired = ["github" if env.get("GITHUB_ACTIONS") == "true" else "text"]
    planned += [(fmt, None) for fmt in paired]
    for named, file in planned:
        if file == "":
            raise UsageError(f"--output {named}= names no file", f"write --output {named}=FILE")
    planned = [(fmt, None if file == "-" else file) for fmt, file in planned]  # `-o -` is stdout, as usual
    to_stdout = [fmt for fmt, file in planned if file is None]
    if len(to_stdout) > 1:
        raise UsageError(f"formats {', '.join(to_stdout)} would all go to stdout", "give each but one an --output FILE")
    return planned


def write(report: Report, planned: list[tuple[str, str | None]]) -> None:
    import sys

    for fmt, path in planned:
        text = render(report, fmt)
        if path is None:
            sys.stdout.write(text)
            continue
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}", "pass a writable --output path") from None
