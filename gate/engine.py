"""Targets, evaluation and verdicts: one resolved image, every target's policy, one result per target."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gate import manifest as mf
from gate.errors import UsageError
from gate.policy import Effective, Registry, Setting, split_profile
from gate.reference import Reference
from gate.reference import parse as parse_reference
from gate.rules import Context, Hit
from gate.sources import source_tag

BASELINE = "oci"


@dataclass(frozen=True)
class Target:
    ref: Reference | None
    text: str | None
    """The reference as the user wrote it (reported back as `target`)."""
    profile: str
    version: str | None
    chosen_by: str
    """How the profile was picked: "host quay.io", "--target", "--profile", "default"."""


@dataclass(frozen=True)
class Waived:
    """Why a finding does not count toward the verdict (a config waiver), and until when."""

    reason: str
    expires: str
    origin: str
    """`file:line` of the waiver."""


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    path: str
    digest: str | None
    platform: str | None
    message: str
    fix: str | None
    sources: tuple[str, ...]
    waived: Waived | None = None


@dataclass
class Result:
    target: Target
    effective: Effective
    findings: list[Finding] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        severities = {f.severity for f in self.findings if f.waived is None}
        return "fail" if "error" in severities else "warn" if "warning" in severities else "pass"


def target_from_option(text: str, registry: Registry, registries: Mapping[str, str] | None = None) -> Target:
    """`--target REF[=PROFILE[@VERSION]]`: the profile is forced, else chosen by the reference's host: the config's
    `registries` map (exact host:port, host, then glob) beats the profiles' built-in `hosts`."""
    ref_text, _, forced = text.partition("=")
    head = ref_text.split(":")[0]
    if "/" not in ref_text and ("." in head or head == "localhost" or ref_text.startswith("[")):
        raise UsageError(
            f"--target {ref_text} names a registry, not an image",
            f"write --target {ref_text}/NAMESPACE/REPOSITORY:TAG, or --profile PROFILE for a registry with no name",
        )
    ref = parse_reference(ref_text)
    if forced:
        name, version = split_profile(forced)
        registry.get(name)
        return Target(ref, ref_text, name, version, "--target")
    mapped = _mapped_host(ref.host, registries or {})
    if mapped is not None:
        pattern, spec = mapped
        name, version = split_profile(spec)
        registry.get(name)
        return Target(ref, ref_text, name, version, f"config registries {pattern}")
    match = registry.match_host(ref.host)
    if match is None:
        return Target(ref, ref_text, BASELINE, None, "default")
    profile, pattern = match
    return Target(ref, ref_text, profile.name, None, f"host {pattern}")


def _mapped_host(host: str, registries: Mapping[str, str]) -> tuple[str, str] | None:
    import fnmatch

    host = host.lower()
    bare = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
    for candidate in (host, bare):
        for pattern, spec in registries.items():
            if pattern.lower() == candidate:
                return pattern, spec
    globs = [(p, s) for p, s in registries.items() if "*" in p]
    globs.sort(key=lambda ps: -len(ps[0].replace("*", "")))
    for pattern, spec in globs:
        if fnmatch.fnmatchcase(host, pattern.lower()) or fnmatch.fnmatchcase(bare, pattern.lower()):
            return pattern, spec
    return None


def target_from_profile(spec: str, registry: Registry) -> Target:
    name, version = split_profile(spec)
    registry.get(name)
    return Target(None, None, name, version, "--profile")


def destination(ref: Reference | None, source: str) -> str:
    """Where a fix copies to: the target; one named without a tag or digest takes the source's tag, so that the
    fixes for many tags of one repository (`audit`) do not all land on `latest`."""
    if ref is None:
        return "docker://DEST"
    tag = source_tag(source) if ref.tag is None and ref.digest is None else None
    return f"docker://{ref}:{tag}" if tag else f"docker://{ref}"


def transport_name(source: str) -> str:
    """The source as skopeo names it, for fix commands (`docker://...`, `oci:DIR:TAG`)."""
    if source.startswith(("docker://", "oci:", "oci-archive:")):
        return source
    return "docker://SOURCE"


def version_notices(target: Target, registry: Registry) -> list[str]:
    """Say how a version the profile does not list was read, so a pass for `quay@4.0` is never silent."""
    version = target.version
    if version is None or version == "saas":
        return []
    known = registry.known_versions(target.profile)
    label = f"{target.profile}@{version}"
    if not known:
        return [f"{label}: the {target.profile} profile has no versions; the version was ignored"]
    if version in known:
        return []
    listed = ", ".join(known)
    if version.endswith(".x"):
        read = registry.series_version(target.profile, version)
        return [f"{label}: read as {read}, the newest release of that series the profile knows ({listed})"]
    return [f"{label}: not a version the profile knows ({listed}); its version conditions were applied as written"]


def evaluate(image: mf.Image, target: Target, registry: Registry, source_flags: Sequence[str] = ()) -> Result:
    """The findings of `target`'s profile on `image`; `source_flags` are the skopeo `--src-*` flags the image was
    read with, carried into fix commands when the source is a registry."""
    effective = registry.resolve(target.profile, target.version)
    result = Result(target, effective)
    if target.chosen_by == "default":
        host = target.ref.host if target.ref else "?"
        result.notices.append(
            f"no profile knows the host {host}: checked against the OCI baseline only; "
            f"choose one with --target {target.text}=PROFILE[@VERSION] (registry-gate profiles lists them)"
        )
    result.notices += version_notices(target, registry)
    ctx = Context(image, target.ref)
    source = transport_name(image.source)
    dest = destination(target.ref, image.source)
    flags = source_flags if image.source.startswith("docker://") else ()
    skipped = []
    for setting in effective.active():
        rule = setting.rule
        if rule.needs_children and not image.children_inspected:
            skipped.append(rule.id)
            continue
        for hit in rule.check(ctx, setting.params):
            result.findings.append(_finding(hit, setting.rule.id, setting, source, dest, flags))
    if skipped and any(n.depth for n in image.nodes):
        result.notices.append(
            "child manifests were not inspected, so these rules did not run: " + ", ".join(sorted(skipped))
        )
    order = {"error": 0, "warning": 1, "info": 2}
    result.findings.sort(key=lambda f: (order[f.severity], f.path, f.rule))
    return result


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: str) -> str:
    """Escape control characters and lone surrogates that a manifest smuggles into a message, so no renderer
    prints a forged line, a terminal escape or a workflow command."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def fix_command(template: str, source: str, dest: str, source_flags: Sequence[str] = ()) -> str:
    """A rule's fix with the source and destination filled in, shell-quoted. A `skopeo copy` that reads the source
    also gets the flags the gate itself needed to read it (`--src-tls-verify=false`, `--src-authfile`,
    `--src-cert-dir`); the destination's are the user's to add, since reading one registry insecurely says nothing
    about the other."""
    fix = template.replace("{source}", shlex.quote(source)).replace("{target}", shlex.quote(dest))
    if source_flags and "{source}" in template and "skopeo copy " in fix:
        fix = fix.replace("skopeo copy ", f"skopeo copy {shlex.join(source_flags)} ", 1)
    return fix


def _finding(hit: Hit, rule_id: str, setting: Setting, source: str, dest: str, flags: Sequence[str]) -> Finding:
    node = hit.node
    if hit.entry is not None:
        digest, platform = hit.entry.digest, hit.entry.platform
    else:
        digest = node.manifest.digest if node.manifest else (node.descriptor.digest if node.descriptor else None)
        platform = node.platform
    message = hit.message
    if setting.note:
        message = f"{message}: {setting.note}"
    fix = fix_command(setting.rule.fix, source, dest, flags) if setting.rule.fix else None
    return Finding(
        rule=rule_id,
        severity=setting.severity,
        path=printable(node.at(hit.path)),
        digest=digest,
        platform=printable(str(platform)) if platform else None,
        message=printable(message),
        fix=printable(fix) if fix else None,
        sources=setting.sources,
    )


def plan_targets(
    targets: list[str], profiles: list[str], registry: Registry, registries: Mapping[str, str] | None = None
) -> list[Target]:
    planned = [target_from_option(t, registry, registries) for t in targets]
    planned += [target_from_profile(p, registry) for p in profiles]
    if not planned:
        planned.append(Target(None, None, BASELINE, None, "no target"))
    seen = set()
    for t in planned:
        key = (t.text, t.profile, t.version)
        if key in seen:
            raise UsageError(f"target {t.text or t.profile} is given twice", "name each target once")
        seen.add(key)
    return planned
