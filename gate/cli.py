"""The command line: parse, call, render, exit. Everything heavy is imported inside the commands."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from gate import __version__

app = typer.Typer(
    name="registry-gate",
    help="Predict whether container registries will accept a manifest or index, before the push.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _die(exc: Exception) -> NoReturn:
    from gate.errors import EXIT_INSPECT, GateError

    if isinstance(exc, GateError):
        typer.echo(f"registry-gate: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code)
    if os.environ.get("REGISTRY_GATE_DEBUG"):
        raise exc
    typer.echo(
        f"registry-gate: internal error: {type(exc).__name__}: {exc} (set REGISTRY_GATE_DEBUG=1 for details)", err=True
    )
    raise typer.Exit(EXIT_INSPECT)


def _version(value: bool) -> None:
    if value:
        from gate.skopeo import Skopeo

        skopeo = Skopeo().version()
        typer.echo(f"registry-gate {__version__} (skopeo {skopeo or 'not found'})")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print versions and exit."),
) -> None:
    """Predict registry manifest refusals before the push."""


@app.command()
def check(
    source: str = typer.Argument(..., help="docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG] or a saved manifest."),
    target: list[str] = typer.Option([], "--target", "-t", help="REF[=PROFILE[@VERSION]] you will push to (repeat)."),
    profile: list[str] = typer.Option([], "--profile", "-p", help="PROFILE[@VERSION] to check with no reference."),
    policy: list[str] = typer.Option([], "--policy", help="Extra policy YAML file (repeat)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    fail_on: str = typer.Option("error", "--fail-on", help="error, or warning to fail on warnings too."),
    tls_verify: bool | None = typer.Option(None, "--tls-verify/--no-tls-verify", help="Verify registry TLS."),
    authfile: str | None = typer.Option(None, "--authfile", help="Registry auth file (default REGISTRY_AUTH_FILE)."),
    cert_dir: str | None = typer.Option(None, "--cert-dir", help="Folder of CA certificates for the registry."),
    children: str | None = typer.Option(None, "--children", help="Folder of child manifests for a saved manifest."),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, max=64, help="Child manifests fetched at once."),
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="Seconds allowed for each skopeo call."),
) -> None:
    """Check SOURCE against the policy of every target registry."""
    try:
        from gate.engine import evaluate, plan_targets
        from gate.errors import EXIT_FAIL, EXIT_PASS, UsageError
        from gate.policy import Registry
        from gate.report import FORMATS, Report, render
        from gate.skopeo import Options, Skopeo
        from gate.sources import open_source

        if fmt not in FORMATS:
            raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}", "pick one of them")
        if fail_on not in ("error", "warning"):
            raise UsageError(f"--fail-on {fail_on!r} is not error or warning", "pick one of them")
        registry = Registry(policy)
        targets = plan_targets(target, profile, registry)
        skopeo = Skopeo(Options(tls_verify=tls_verify, authfile=authfile, cert_dir=cert_dir, timeout=timeout))
        image = open_source(source, skopeo, jobs, children)
        results = [evaluate(image, t, registry) for t in targets]
        report = Report(image.source, image.top.digest, image.top.type, results)
        sys.stdout.write(render(report, fmt))
        failing = {"fail"} | ({"warn"} if fail_on == "warning" else set())
        code = EXIT_FAIL if any(r.verdict in failing for r in results) else EXIT_PASS
    except Exception as exc:
        _die(exc)
    raise typer.Exit(code)


def main() -> None:
    app()
