"""The gate's own errors: one line each, with the fix, and a distinct exit code."""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INSPECT = 3


class GateError(Exception):
    """An error the user can act on. `str()` is the one line we print."""

    exit_code = EXIT_USAGE

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}" if self.fix else self.problem


class UsageError(GateError):
    """Bad arguments, bad reference, bad policy or config file (exit 2)."""


class ManifestError(GateError):
    """Bytes that cannot be read as a manifest at all (exit 2: the input is wrong)."""


class InspectError(GateError):
    """The source could not be inspected: skopeo, registry, network, layout (exit 3)."""

    exit_code = EXIT_INSPECT

    def __init__(self, problem: str, fix: str | None = None, kind: str = "inspect") -> None:
        super().__init__(problem, fix)
        self.kind = kind
