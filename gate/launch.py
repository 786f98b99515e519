"""The console script: start the registry fetch that a `check` will make, then hand over to the CLI.

Loading the CLI framework (typer and click) takes about 0.1 s, a third of one round trip to a distant registry.
For `check docker://REPO:TAG` the first skopeo call is known from the command line alone, so it starts here, before
that import, and the real call takes the running process over when its argv is the same (`skopeo.start_early`).
Only plain command lines are read: anything this reader does not know starts nothing, and the CLI then runs as
it would have anyway.
"""

from __future__ import annotations

import os
import sys

# check's options, by whether they take a value (tests/test_launch.py holds these to gate/cli.py's).
VALUED = frozenset(
    [
        "--target",
        "-t",
        "--profile",
        "-p",
        "--policy",
        "--format",
        "-f",
        "--output",
        "-o",
        "--fail-on",
        "--config",
        "--authfile",
        "--cert-dir",
        "--children",
        "--jobs",
        "-j",
        "--timeout",
        "--deadline",
    ]
)
FLAGS = frozenset(["--no-waivers", "--tls-verify", "--no-tls-verify", "--no-cache"])


def early_fetch(args: list[str]) -> list[str] | None:
    """The skopeo argv `check` will run first for this command line, or None when that is not certain."""
    if len(args) < 2 or args[0] != "check":
        return None
    source = None
    values: dict[str, str] = {}
    tls_verify = None
    rest = iter(args[1:])
    for arg in rest:
        name, eq, inline = arg.partition("=")
        if name in VALUED and arg.startswith("-"):
            value = inline if eq else next(rest, None)
            if value is None:
                return None
            values[name] = value
        elif arg in FLAGS:
            if arg.endswith("tls-verify"):
                tls_verify = arg == "--tls-verify"
        elif arg.startswith("-") or source is not None:
            return None  # --help, --, an option we do not know, a second argument: the CLI's business
        else:
            source = arg
    if source is None or not source.startswith("docker://"):
        return None
    from gate import skopeo
    from gate.errors import UsageError
    from gate.reference import parse

    if os.environ.get(skopeo.USERNAME_ENV) or os.environ.get(skopeo.PASSWORD_ENV):
        return None  # the run writes a private auth file first
    try:
        ref = parse(source)
        if ref.digest:
            return None  # may be served from the cache without any call
        options = skopeo.Options(tls_verify, values.get("--authfile"), values.get("--cert-dir"))
        return skopeo.Skopeo(options).inspect_argv(str(ref))
    except UsageError:
        return None


def main() -> None:
    argv = early_fetch(sys.argv[1:])
    if argv is not None:
        from gate.skopeo import start_early

        start_early(argv)
    from gate.cli import main as cli

    cli()
