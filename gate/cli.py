"""The command line: parse, call, render, exit. Everything heavy is imported inside the commands."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec

import click
import typer

from gate import __version__

app = typer.Typer(
    name="registry-gate",
    help="Predict whether container registries will accept a manifest or index, before the push.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts hold literal [brackets] (REF[=PROFILE[@VERSION]])
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


P = ParamSpec("P")


def _guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Every command's errors leave as one line and a distinct exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # typer's own exits and usage errors
        except Exception as exc:
            _die(exc)

    return run


def _version(value: bool) -> None:
    if value:
        from gate.cache import Cache
        from gate.skopeo import Skopeo

        skopeo = Skopeo().version(Cache())
        typer.echo(f"registry-gate {__version__} (skopeo {skopeo or 'not found'})")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print versions and exit."),
) -> None:
    """Predict registry manifest refusals before the push."""


@app.command()
@_guarded
def check(
    source: str = typer.Argument(..., help="docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG] or a saved manifest."),
    target: list[str] = typer.Option([], "--target", "-t", help="REF[=PROFILE[@VERSION]] you will push to (repeat)."),
    profile: list[str] = typer.Option([], "--profile", "-p", help="PROFILE[@VERSION] to check with no reference."),
    policy: list[str] = typer.Option([], "--policy", help="Extra policy YAML file (repeat)."),
    fmt: list[str] = typer.Option(
        [], "--format", "-f", help="text, json, sarif, junit, github, markdown (repeat; default text, github in CI)."
    ),
    output: list[str] = typer.Option([], "--output", "-o", help="FILE for the --format in that place, or FMT=FILE."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="error, or warning to fail on warnings too."),
    config: str | None = typer.Option(None, "--config", help="Config file (default: see registry-gate config path)."),
    no_waivers: bool = typer.Option(False, "--no-waivers", help="Ignore the config's waivers."),
    tls_verify: bool | None = typer.Option(None, "--tls-verify/--no-tls-verify", help="Verify registry TLS."),
    authfile: str | None = typer.Option(None, "--authfile", help="Registry auth file (default REGISTRY_AUTH_FILE)."),
    cert_dir: str | None = typer.Option(None, "--cert-dir", help="Folder of CA certificates for the registry."),
    children: str | None = typer.Option(None, "--children", help="Folder of child manifests for a saved manifest."),
    jobs: int = typer.Option(16, "--jobs", "-j", min=1, max=64, help="Child manifests fetched at once."),
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="Seconds allowed for each skopeo call."),
    deadline: float | None = typer.Option(None, "--deadline", min=1, help="Seconds allowed for the whole run."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the manifest cache on disk."),
) -> None:
    """Check SOURCE against the policy of every target registry."""
    from gate.cache import Cache
    from gate.skopeo import Options, session
    from gate.sources import open_in_background

    options = Options(tls_verify, authfile, cert_dir, timeout, deadline=_deadline(deadline))
    with session(options, _hosts([source])) as skopeo:
        # The registry answers while the rest is imported and the policies load.
        opened = open_in_background(source, skopeo, jobs, children, Cache(disk=not no_cache))
        from gate.config import settle
        from gate.engine import evaluate, plan_targets
        from gate.errors import EXIT_FAIL, EXIT_PASS
        from gate.policy import Registry
        from gate.report import Report, outputs

        planned = outputs.plan(fmt, output)
        run = settle(config, no_waivers, policy, target, profile, fail_on)
        registry = Registry(run.policies)
        targets = plan_targets(run.targets, run.profiles, registry, run.registries)
        image = opened()
    results = [evaluate(image, t, registry, options.registry_flags("src-")) for t in targets]
    run.waive(results, image.top.digest)
    report = Report(image.source, image.top.digest, image.top.type, results, run.notices, run.fail_on)
    outputs.write(report, planned)
    code = EXIT_FAIL if any(report.failing(r) for r in results) else EXIT_PASS
    raise typer.Exit(code)


# --- the knowledge base: gate/catalog_cli.py holds the implementations -------------------------------------------

_FORMAT = typer.Option("text", "--format", "-f", help="text or json.")
_POLICY = typer.Option([], "--policy", help="Extra policy YAML file (repeat).")


@app.command("rules")
@_guarded
def rules_cmd(fmt: str = _FORMAT) -> None:
    """List every rule: id, family, default severity, summary."""
    from gate.catalog_cli import rules_command

    sys.stdout.write(rules_command(fmt))


@app.command("explain")
@_guarded
def explain_cmd(
    rule: str = typer.Argument(..., help="A rule id (registry-gate rules lists them)."),
    policy: list[str] = _POLICY,
    fmt: str = _FORMAT,
) -> None:
    """Explain a rule: what, why, parameters, examples, fix, sources and the profiles that run it."""
    from gate.catalog_cli import explain_command

    sys.stdout.write(explain_command(rule, policy, fmt))


profiles_app = typer.Typer(help="List the registry profiles, or show one's effective rules.", no_args_is_help=False)
app.add_typer(profiles_app, name="profiles")


@profiles_app.callback(invoke_without_command=True)
@_guarded
def profiles_cmd(ctx: typer.Context, policy: list[str] = _POLICY, fmt: str = _FORMAT) -> None:
    """List the profiles: name, kind, hosts, versions, extends, summary."""
    if ctx.invoked_subcommand is not None:
        return
    from gate.catalog_cli import profiles_command

    sys.stdout.write(profiles_command(policy, fmt))


@profiles_app.command("show")
@_guarded
def profiles_show_cmd(
    profile: str = typer.Argument(..., help="PROFILE or PROFILE@VERSION, e.g. quay@3.12."),
    policy: list[str] = _POLICY,
    fmt: str = _FORMAT,
) -> None:
    """Show the effective rules of a profile (after extends and version conditions) and where each came from."""
    from gate.catalog_cli import profile_show_command

    sys.stdout.write(profile_show_command(profile, policy, fmt))


policy_app = typer.Typer(help="Validate policy files, or print their JSON Schema.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("validate")
@_guarded
def policy_validate_cmd(files: list[str] = typer.Argument(..., help="Policy YAML files.")) -> None:
    """Validate policy files strictly: `FILE: ok`, or `file:line: problem` and exit 2."""
    from gate.catalog_cli import validate_command

    out, err, code = validate_command(files)
    sys.stdout.write(out)
    sys.stderr.write(err)
    raise typer.Exit(code)


@policy_app.command("schema")
@_guarded
def policy_schema_cmd() -> None:
    """Print the JSON Schema (draft 2020-12) of a policy file, for editors."""
    from gate.catalog_cli import schema_command

    sys.stdout.write(schema_command())


def _deadline(seconds: float | None) -> float | None:
    import time

    return None if seconds is None else time.monotonic() + seconds


def _hosts(sources: list[str]) -> set[str]:
    """The registry hosts among `docker://` sources (where credentials from the environment may go)."""
    from gate.errors import UsageError
    from gate.reference import parse

    hosts = set()
    for source in sources:
        if source.startswith("docker://"):
            try:
                hosts.add(parse(source).host)
            except UsageError:
                continue  # reported when the source is opened
    return hosts


@app.command()
@_guarded
def audit(
    sources: list[str] = typer.Argument(
        None, help="Sources as for check; HOST/REPOSITORY with no tag means each of its tags.", show_default=False
    ),
    from_file: str | None = typer.Option(
        None, "--from-file", help="File of sources, one a line, # comments ('-': stdin)."
    ),
    tags: str | None = typer.Option(None, "--tags", help="Only tags matching this regular expression (re.search)."),
    shard: str | None = typer.Option(None, "--shard", help="K/N: check only this job's share of the sources."),
    target: list[str] = typer.Option([], "--target", "-t", help="REF[=PROFILE[@VERSION]] you will push to (repeat)."),
    profile: list[str] = typer.Option([], "--profile", "-p", help="PROFILE[@VERSION] to check with no reference."),
    policy: list[str] = typer.Option([], "--policy", help="Extra policy YAML file (repeat)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json (registry-gate/audit/v1)."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="error, or warning to fail on warnings too."),
    config: str | None = typer.Option(None, "--config", help="Config file (default: see registry-gate config path)."),
    no_waivers: bool = typer.Option(False, "--no-waivers", help="Ignore the config's waivers."),
    tls_verify: bool | None = typer.Option(None, "--tls-verify/--no-tls-verify", help="Verify registry TLS."),
    authfile: str | None = typer.Option(None, "--authfile", help="Registry auth file (default REGISTRY_AUTH_FILE)."),
    cert_dir: str | None = typer.Option(None, "--cert-dir", help="Folder of CA certificates for the registry."),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, max=64, help="skopeo calls at once, over all sources."),
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="Seconds allowed for each skopeo call."),
    deadline: float | None = typer.Option(None, "--deadline", min=1, help="Seconds allowed for the whole run."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the manifest cache on disk."),
) -> None:
    """Check many sources (a repository's tags, a list) at once; one report, the worst exit code."""
    from gate import audit as bulk
    from gate.cache import Cache
    from gate.config import settle
    from gate.engine import plan_targets
    from gate.errors import UsageError
    from gate.policy import Registry
    from gate.report import audit as audit_report
    from gate.skopeo import Options, session

    if fmt not in ("text", "json"):
        raise UsageError(f"--format {fmt!r} is not one of text, json", "pick one of them")
    specs = list(sources or []) + (bulk.read_list(from_file) if from_file else [])
    if not specs:
        raise UsageError("no sources", "name sources as arguments or pass --from-file FILE")
    which = bulk.parse_shard(shard)
    run = settle(config, no_waivers, policy, target, profile, fail_on)
    registry = Registry(run.policies)
    targets = plan_targets(run.targets, run.profiles, registry, run.registries)
    options = Options(tls_verify, authfile, cert_dir, timeout, deadline=_deadline(deadline))
    specs = [bulk.normalise(s) for s in specs]
    with session(options, _hosts(specs), jobs) as skopeo:
        expanded = [s for s in bulk.expand(specs, tags, skopeo, jobs) if bulk.in_shard(s, which)]
        progress = bulk.Progress()
        cache = Cache(disk=not no_cache)
        flags = options.registry_flags("src-")
        outcomes = bulk.run(expanded, targets, registry, skopeo, jobs, cache, progress, run, flags)
        progress.close()
    code = bulk.worst_exit(outcomes)
    sys.stdout.write(audit_report.render(outcomes, fmt, code, which))
    raise typer.Exit(code)


# --- where users meet the gate: push, config, hooks, the GitHub Action ---------------------------------------------


@app.command()
@_guarded
def push(
    source: str = typer.Argument(..., help="docker://REF, oci:DIR[:TAG] or oci-archive:FILE[:TAG]."),
    dest: str = typer.Argument(..., help="Destination reference (docker:// optional)."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="PROFILE[@VERSION] of DEST (default: by host)."),
    fix: bool = typer.Option(False, "--fix", help="Copy converted to OCI when conversion fixes every failure."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check, then print the skopeo command, do not copy."),
    policy: list[str] = typer.Option([], "--policy", help="Extra policy YAML file (repeat)."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="error, or warning to refuse on warnings too."),
    config: str | None = typer.Option(None, "--config", help="Config file (registries, policies, waivers)."),
    no_waivers: bool = typer.Option(False, "--no-waivers", help="Ignore the config's waivers."),
    tls_verify: bool | None = typer.Option(None, "--tls-verify/--no-tls-verify", help="Verify registry TLS."),
    authfile: str | None = typer.Option(None, "--authfile", help="Registry auth file (default REGISTRY_AUTH_FILE)."),
    cert_dir: str | None = typer.Option(None, "--cert-dir", help="Folder of CA certificates for the registry."),
    jobs: int = typer.Option(16, "--jobs", "-j", min=1, max=64, help="Child manifests fetched at once."),
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="Seconds allowed for each skopeo call."),
) -> None:
    """Check SOURCE against DEST's profile; copy it with skopeo (all platforms) only when it passes."""
    from gate.config import settle
    from gate.push import push as run_push
    from gate.skopeo import Options

    run = settle(config, no_waivers, policy, [], [], fail_on)
    options = Options(tls_verify, authfile, cert_dir, timeout)
    code = run_push(source, dest, profile, fix, dry_run, run, options, jobs)
    raise typer.Exit(code)


config_app = typer.Typer(help="The config file .registry-gate.yaml: which one is used, its JSON Schema.")
app.add_typer(config_app, name="config")


@config_app.command("schema")
@_guarded
def config_schema_cmd() -> None:
    """Print the JSON Schema of .registry-gate.yaml (for editors and linters)."""
    import json

    from gate.config import schema

    sys.stdout.write(json.dumps(schema(), indent=2) + "\n")


@config_app.command("path")
@_guarded
def config_path_cmd(config: str | None = typer.Option(None, "--config", help="Config file to check.")) -> None:
    """Print the config file that would be used (after validating it), or say there is none."""
    from gate.config import discover, load

    path = discover(config)
    if path is None:
        typer.echo("no config file (looked for --config, REGISTRY_GATE_CONFIG, ./.registry-gate.yaml, XDG)")
        raise typer.Exit(0)
    load(path)
    typer.echo(str(path))


hook_app = typer.Typer(help="Git pre-push hook: install it, or run what it runs.", no_args_is_help=True)
app.add_typer(hook_app, name="hook")


@hook_app.command("install")
@_guarded
def hook_install_cmd(
    force: bool = typer.Option(False, "--force", help="Replace an existing pre-push hook that is not ours."),
) -> None:
    """Write .git/hooks/pre-push: `git push` then checks the config's images (not on `docker push`)."""
    from pathlib import Path

    from gate.config import discover
    from gate.hook import install

    hook = install(Path.cwd(), force)
    typer.echo(f"installed {hook}: `git push` now runs `registry-gate hook run` first")
    typer.echo("note: it runs on `git push`, not `docker push`; to push images use `registry-gate push SRC DEST`")
    if discover(None) is None:
        typer.echo(
            "warning: no .registry-gate.yaml here yet: every `git push` will stop until one lists `images:` "
            "and `targets:` (see docs/hooks.md)",
            err=True,
        )


@hook_app.command("run")
@_guarded
def hook_run_cmd(
    config: str | None = typer.Option(None, "--config", help="Config file (default: discovered)."),
    no_waivers: bool = typer.Option(False, "--no-waivers", help="Ignore the config's waivers."),
) -> None:
    """Check every `images:` entry of the config against its targets; the worst exit code wins."""
    from gate.hook import run as run_hook

    code = run_hook(config, no_waivers)
    raise typer.Exit(code)


@app.command("action", hidden=True)
@_guarded
def action_cmd() -> None:
    """The GitHub Action's step (inputs from INPUT_* variables); see action.yml."""
    from gate.action import run as run_action

    code = run_action()
    raise typer.Exit(code)


def main() -> None:
    app()
