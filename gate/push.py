"""`registry-gate push SRC DEST`: check SRC against DEST's profile, and copy it only when it would be accepted.

The copy is `skopeo copy --all` (every platform; `--all` is the spelling every skopeo version knows, `--multi-arch
all` needs 1.6+). With `--fix`, an image whose every failing finding is fixed by conversion (the rule's fix is
`skopeo copy ... --format oci`) is copied with `--format oci` instead, and DEST is then checked again: the verdict
is that of what landed. `--format oci` is never combined with `--preserve-digests`: skopeo 1.9.3 then copies the
image unchanged without a word.
"""

from __future__ import annotations

import shlex
import sys

from gate.config import Settled
from gate.engine import Finding, Result, evaluate, target_from_option
from gate.errors import EXIT_FAIL, EXIT_PASS, UsageError
from gate.policy import Registry
from gate.reference import parse as parse_reference
from gate.report import Report, render
from gate.rules import catalog
from gate.skopeo import Options, session
from gate.sources import open_source

TRANSPORTS = ("docker://", "oci:", "oci-archive:")


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def decide(report: Report, result: Result, fix: bool) -> tuple[bool, bool, list[Finding]]:
    """(copy?, convert?, the findings that block a plain copy)."""
    counted = {"error", "warning"} if report.fail_on == "warning" else {"error"}
    blocking = [f for f in result.findings if f.waived is None and f.severity in counted]
    if not blocking:
        return True, False, []
    rules = catalog()
    convertible = all(f.rule in rules and rules[f.rule].fixable_by_conversion for f in blocking)
    return fix and convertible, fix and convertible, blocking


def _gate_flags(options: Options) -> list[str]:
    """The registry options of this run as `registry-gate` flags, for the re-check it prints."""
    flags = [] if options.tls_verify is None else ["--tls-verify" if options.tls_verify else "--no-tls-verify"]
    flags += ["--authfile", options.authfile] if options.authfile else []
    flags += ["--cert-dir", options.cert_dir] if options.cert_dir else []
    return flags


def push(
    source: str,
    dest: str,
    profile: str | None,
    fix: bool,
    dry_run: bool,
    run: Settled,
    options: Options,
    jobs: int = 8,
) -> int:
    if not source.startswith(TRANSPORTS):
        raise UsageError(
            f"push cannot copy from {source!r}", "give the source as docker://REF, oci:DIR[:TAG] or oci-archive:FILE"
        )
    dest_ref = dest.removeprefix("docker://")
    ref = parse_reference(dest_ref)
    registry = Registry(run.policies)
    target = target_from_option(f"{dest_ref}={profile}" if profile else dest_ref, registry, run.registries)
    hosts = {ref.host} | ({parse_reference(source).host} if source.startswith("docker://") else set())
    with session(options, hosts) as skopeo:
        image = open_source(source, skopeo, jobs)
        result = evaluate(image, target, registry, options.registry_flags("src-"))
        run.waive([result], image.top.digest)
        report = Report(image.source, image.top.digest, image.top.type, [result], run.notices, run.fail_on)
        sys.stdout.write(render(report, "text"))
        copy, convert, blocking = decide(report, result, fix)
        if not copy:
            rules = catalog()
            stuck = sorted({f.rule for f in blocking if not (f.rule in rules and rules[f.rule].fixable_by_conversion)})
            if not stuck:
                hint = "pass --fix to copy it converted to OCI (skopeo copy --format oci)"
            else:
                hint = "conversion does not fix " + ", ".join(stuck) + "; fix the image first"
            _out(f"push: refused: {len(blocking)} failing finding(s) for {dest_ref}, nothing copied; {hint}")
            return EXIT_FAIL
        argv = skopeo.copy_argv(source, f"docker://{dest_ref}", oci=convert)
        version = f"@{target.version}" if target.version else ""
        chosen = f"{dest_ref}={target.profile}{version}"
        recheck = shlex.join(
            ["registry-gate", "check", f"docker://{dest_ref}", *_gate_flags(options), "--target", chosen]
        )
        if dry_run:
            _out(f"push: would run: {shlex.join(argv)}")
            if convert:
                _out(f"push: then check what landed: {recheck}")
            return EXIT_PASS
        _out(f"push: running: {shlex.join(argv)}")
        skopeo.copy(source, f"docker://{dest_ref}", oci=convert)
        _out(f"push: copied {'(converted to OCI) ' if convert else ''}to {dest_ref}")
        if not convert:
            return EXIT_PASS
        _out(f"push: checking what landed: {recheck}")
        landed = open_source(f"docker://{dest_ref}", skopeo, jobs)
        after = evaluate(landed, target, registry)
        run.waive([after], landed.top.digest)
        again = Report(landed.source, landed.top.digest, landed.top.type, [after], [], run.fail_on)
        sys.stdout.write(render(again, "text"))
        failed = again.failing(after)
        _out(f"push: {dest_ref} {'FAILS' if failed else 'passes'} after conversion ({after.verdict})")
        return EXIT_FAIL if failed else EXIT_PASS
