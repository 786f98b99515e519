"""The console script: start the registry fetch that a `check` will make, then hand over to the CLI.

Loading the CLI (typer, click, and the modules they and the gate need) takes 0.1-0.2 s, about one round trip to a
distant registry. For `check docker://HOST/REPO:TAG` the first skopeo call is known from the command line alone, so
it starts here (`gate.early`), before any of that loads, and the real call takes it over when its argv is the
same. Only plain command lines are read: anything this reader does not know starts nothing, and the CLI then
runs as it would have anyway. Only the standard modules os and sys are loaded before the call starts.
"""

from __future__ import annotations

import os
import sys

# check's options, by whether they take a value (tests/test_launch.py holds these to gate/cli.py's).
VALUED = frozenset(
    {"--target", "-t", "--profile", "-p", "--policy", "--format", "-f", "--output", "-o", "--fail-on", "--config"}
    | {"--authfile", "--cert-dir", "--children", "--jobs", "-j", "--timeout", "--deadline"}
)
FLAGS = frozenset({"--no-waivers", "--tls-verify", "--no-tls-verify", "--no-cache"})
_REFERENCE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:")


def canonical(ref: str) -> bool:
    """Is `ref` HOST/REPOSITORY:TAG spelt exactly as gate.reference writes it back, with no digest?

    Those need no normalising, so the early call names what the real one will. Anything else (Docker Hub's short
    names, digests, odd characters) is left to the CLI, which knows the rules.
    """
    host, _, rest = ref.partition("/")
    hostname, colon, port = host.partition(":")
    name, _, tag = rest.rpartition(":")
    return (
        len(ref) <= 4096
        and set(ref) <= _REFERENCE_CHARS
        and ("." in hostname or colon != "" or hostname == "localhost")
        and hostname[:1].isalnum()
        and hostname[-1:].isalnum()
        and ":" not in port
        and (not colon or (port.isdigit() and len(port) <= 5))
        and not hostname.lower().endswith(("docker.io", "docker.com"))
        and "" not in name.split("/")
        and tag != ""
        and "/" not in tag
    )


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
    if source is None or not source.startswith("docker://") or not canonical(source[len("docker://") :]):
        return None
    from gate import early

    if os.environ.get(early.USERNAME_ENV) or os.environ.get(early.PASSWORD_ENV):
        return None  # the run writes a private auth file first, and names it in the argv

    flags = early.registry_flags(tls_verify, values.get("--authfile"), values.get("--cert-dir"))
    return early.inspect_argv(source[len("docker://") :], flags)


def main() -> None:
    argv = early_fetch(sys.argv[1:])
    from gate import early

    if argv is not None:
        early.start(argv)
    early.stop_on_signals()
    try:
        from gate.cli import main as cli

        cli()
    except KeyboardInterrupt:  # Ctrl-C before the CLI took over its handling: no traceback
        sys.exit(130)
    finally:
        early.stop_all()  # an error or a signal can end the run while skopeo processes still run
        # Python's shutdown collects garbage over every object, which took 35-58 ms after a check (35,000 objects,
        # most of them typer's and the policies'); the OS frees them at once.
        import gc

        gc.freeze()
