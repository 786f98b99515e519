"""The project config file `.registry-gate.yaml`: images, targets, self-hosted registries, policies, waivers.

Discovery (first found wins): `--config FILE` > `$REGISTRY_GATE_CONFIG` > `.registry-gate.yaml` / `.yml` in the
current directory > `$XDG_CONFIG_HOME/registry-gate/config.yaml` (default `~/.config`). Command-line options beat
the file: `--target`/`--profile` replace its targets, `--fail-on` its fail-on, `--policy` adds to its policies.

    images: [oci:build/layout:1.0]           # what `registry-gate hook run` (the git pre-push hook) checks
    targets:
      - ref: quay.io/acme/app:1.0            # profile chosen by host, or forced with `profile:`
      - profile: quay@3.12                   # a profile with no reference
    registries:
      registry.corp.example: quay@3.12       # host (or glob) -> profile; beats the built-in host table
    policies: [policies/]                    # files or folders of *.yaml, relative to this file
    fail-on: error
    waivers:
      - rule: mixed-oci-index
        target: "quay.io/acme/*"             # glob on the target as written (or normalised, or its profile)
        digest: sha256:...                   # optional: only this manifest (the top or the entry)
        reason: Quay 3.18 rollout, PROJQUAY-11637
        expires: 2027-01-31                  # required; an expired waiver is itself an error finding

Waived findings stay in the report (marked) but do not count toward the verdict.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gate.engine import Finding, Result, Waived
from gate.errors import UsageError
from gate.policy import Lined, load_yaml, split_profile

NAMES = (".registry-gate.yaml", ".registry-gate.yml")
KEYS = ("images", "targets", "registries", "policies", "fail-on", "waivers")
TARGET_KEYS = ("ref", "profile")
WAIVER_KEYS = ("rule", "target", "digest", "reason", "expires")
EXPIRED_RULE = "waiver-expired"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_PROFILE = r"^[a-z0-9][a-z0-9._-]*(@(saas|\d+(\.\d+)*(\.x)?))?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class ConfigError(UsageError):
    """The config file is wrong: names the file, the line, what is wrong and the nearest valid key."""


@dataclass(frozen=True)
class ConfigTarget:
    ref: str | None
    profile: str | None

    def option(self) -> tuple[str, str]:
        """("--target", "REF[=PROFILE]") or ("--profile", "PROFILE")."""
        if self.ref:
            return "--target", f"{self.ref}={self.profile}" if self.profile else self.ref
        return "--profile", str(self.profile)


@dataclass(frozen=True)
class Waiver:
    rule: str
    target: str
    digest: str | None
    reason: str
    expires: dt.date
    origin: str


@dataclass
class Config:
    path: Path
    images: list[str] = field(default_factory=list)
    targets: list[ConfigTarget] = field(default_factory=list)
    registries: dict[str, str] = field(default_factory=dict)
    policies: list[str] = field(default_factory=list)
    fail_on: str | None = None
    waivers: list[Waiver] = field(default_factory=list)


# --- discovery --------------------------------------------------------------------------------------------------


def discover(explicit: str | None, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The config file to use, or None. A file named explicitly (option or variable) must exist."""
    env = os.environ if env is None else env
    for named, how in ((explicit, "--config"), (env.get("REGISTRY_GATE_CONFIG"), "REGISTRY_GATE_CONFIG")):
        if named:
            path = Path(named)
            if not path.is_file():
                raise ConfigError(f"{how} {named}: no such file", "pass the path of a .registry-gate.yaml")
            return path
    here = cwd or Path.cwd()
    for name in NAMES:
        if (here / name).is_file():
            return here / name
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    user = Path(xdg) / "registry-gate" / "config.yaml"
    return user if user.is_file() else None


# --- loading ----------------------------------------------------------------------------------------------------


def _suggest(word: str, options: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _at(path: Path, node: Any, key: str | None = None) -> str:
    line = 0
    if isinstance(node, Lined):
        line = node.lines.get(key, node.line) if key else node.line
    return f"{path}:{line}" if line else str(path)


def _keys(path: Path, data: Any, allowed: tuple[str, ...], what: str) -> Lined:
    if not isinstance(data, Lined):
        raise ConfigError(f"{_at(path, data)}: {what} must be a mapping", f"write {what} as `key: value` lines")
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{_at(path, data, key)}: unknown key {key!r} in {what}{_suggest(key, allowed)}",
                f"allowed: {', '.join(allowed)}",
            )
    return data


def _text(path: Path, node: Lined, key: str, what: str, required: bool = False) -> str | None:
    value = node.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{_at(path, node)}: {what} needs `{key}`", f"add `{key}:` to it")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{_at(path, node, key)}: `{key}` must be a non-empty string", f'quote it: {key}: "..."')
    return value.strip()


def _list(path: Path, data: Lined, key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{_at(path, data, key)}: `{key}` must be a list", f"write `{key}:` then `- ...` lines")
    return value


def _profile(path: Path, node: Lined, key: str, spec: Any) -> str:
    if not isinstance(spec, str) or not re.match(_PROFILE, spec):
        raise ConfigError(f"{_at(path, node, key)}: {spec!r} is not PROFILE[@VERSION]", "write e.g. quay@3.12")
    split_profile(spec)
    return spec


def _date(path: Path, node: Lined, value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"{_at(path, node, 'expires')}: expires {value!r} is not a date", "write it as YYYY-MM-DD"
        ) from None


def load(path: Path) -> Config:
    from gate.policy import PolicyError
    from gate.rules import catalog

    try:
        data = load_yaml(path)
    except PolicyError as exc:
        raise ConfigError(exc.problem.replace("policy", "config"), exc.fix) from None
    if data is None:
        return Config(path)
    data = _keys(path, data, KEYS, "the config")
    config = Config(path)
    for item in _list(path, data, "images"):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{_at(path, data, 'images')}: images must be strings", "write `- oci:DIR:TAG` lines")
        config.images.append(item.strip())
    for item in _list(path, data, "targets"):
        node = _keys(path, item, TARGET_KEYS, "a target")
        ref = _text(path, node, "ref", "a target")
        profile = _profile(path, node, "profile", node["profile"]) if "profile" in node else None
        if not ref and not profile:
            raise ConfigError(f"{_at(path, node)}: a target needs `ref`, `profile` or both", "add one of them")
        config.targets.append(ConfigTarget(ref, profile))
    registries = data.get("registries")
    if registries is not None:
        if not isinstance(registries, Lined):
            raise ConfigError(f"{_at(path, data, 'registries')}: registries must be a mapping", "write `HOST: PROFILE`")
        for host, spec in registries.items():
            if not re.match(r"^[A-Za-z0-9*\[\]:._-]+$", host):
                raise ConfigError(f"{_at(path, registries, host)}: {host!r} is not a host", "write HOST[:PORT]")
            config.registries[host] = _profile(path, registries, host, spec)
    for item in _list(path, data, "policies"):
        if not isinstance(item, str):
            raise ConfigError(f"{_at(path, data, 'policies')}: policies must be paths", "write `- path` lines")
        config.policies += _policy_files(path, data, (path.parent / item).resolve())
    if "fail-on" in data:
        if data["fail-on"] not in ("error", "warning"):
            raise ConfigError(
                f"{_at(path, data, 'fail-on')}: fail-on {data['fail-on']!r} is not error or warning", "pick one"
            )
        config.fail_on = data["fail-on"]
    rules = tuple(catalog())
    for item in _list(path, data, "waivers"):
        node = _keys(path, item, WAIVER_KEYS, "a waiver")
        rule = str(_text(path, node, "rule", "a waiver", required=True))
        if rule not in rules:
            raise ConfigError(
                f"{_at(path, node, 'rule')}: unknown rule {rule!r}{_suggest(rule, rules)}",
                "`registry-gate rules` lists them",
            )
        digest = _text(path, node, "digest", "a waiver")
        if digest and not _DIGEST.match(digest):
            raise ConfigError(f"{_at(path, node, 'digest')}: {digest!r} is not a digest", "write sha256:HEX")
        if "expires" not in node:
            raise ConfigError(f"{_at(path, node)}: a waiver needs `expires`", "add `expires: YYYY-MM-DD`")
        config.waivers.append(
            Waiver(
                rule=rule,
                target=str(_text(path, node, "target", "a waiver", required=True)),
                digest=digest,
                reason=str(_text(path, node, "reason", "a waiver", required=True)),
                expires=_date(path, node, node["expires"]),
                origin=_at(path, node),
            )
        )
    return config


def _policy_files(path: Path, data: Lined, item: Path) -> list[str]:
    if item.is_dir():
        return [str(p) for p in sorted(item.iterdir()) if p.suffix in (".yaml", ".yml") and p.is_file()]
    if item.is_file():
        return [str(item)]
    raise ConfigError(f"{_at(path, data, 'policies')}: policy {item} does not exist", "fix the path (relative to it)")


# --- waivers ----------------------------------------------------------------------------------------------------


def _names(result: Result) -> list[str]:
    target = result.target
    names = [n for n in (target.text, str(target.ref) if target.ref else None) if n]
    return names or [result.effective.label, target.profile]


def _applies(waiver: Waiver, result: Result) -> bool:
    return any(fnmatch.fnmatchcase(name, waiver.target) for name in _names(result))


def apply_waivers(result: Result, waivers: list[Waiver], top_digest: str, today: dt.date | None = None) -> None:
    """Mark the findings that a live waiver covers; add an error finding for each expired waiver of this target."""
    today = today or dt.date.today()
    live = [w for w in waivers if w.expires >= today and _applies(w, result)]
    for i, finding in enumerate(result.findings):
        for w in live:
            if w.rule == finding.rule and (w.digest is None or w.digest in (finding.digest, top_digest)):
                result.findings[i] = replace(finding, waived=Waived(w.reason, w.expires.isoformat(), w.origin))
                break
    for w in waivers:
        if w.expires < today and _applies(w, result):
            result.findings.insert(
                0,
                Finding(
                    rule=EXPIRED_RULE,
                    severity="error",
                    path="",
                    digest=w.digest,
                    platform=None,
                    message=f"the waiver of {w.rule} for {w.target} ({w.origin}) expired on {w.expires.isoformat()}: "
                    f"{w.reason}",
                    fix=f"fix the {w.rule} findings, or renew the waiver's `expires` in {w.origin}",
                    sources=(),
                ),
            )


# --- schema -----------------------------------------------------------------------------------------------------


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `.registry-gate.yaml`, for editors and linters."""
    from gate.rules import catalog

    profile = {"type": "string", "pattern": _PROFILE, "description": "PROFILE[@VERSION], e.g. quay@3.12"}
    text = {"type": "string", "minLength": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://registry-gate.invalid/schema/config.json",
        "title": "registry-gate config (.registry-gate.yaml)",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "images": {
                "description": "Sources the git pre-push hook checks (docker://REF, oci:DIR[:TAG], oci-archive:FILE).",
                "type": "array",
                "items": text,
            },
            "targets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"ref": text, "profile": profile},
                    "anyOf": [{"required": ["ref"]}, {"required": ["profile"]}],
                },
            },
            "registries": {
                "description": "Registry host (or glob) -> profile; beats the profiles' built-in hosts.",
                "type": "object",
                "propertyNames": {"pattern": r"^[A-Za-z0-9*\[\]:._-]+$"},
                "additionalProperties": profile,
            },
            "policies": {
                "description": "Policy files or folders, relative to the config.",
                "type": "array",
                "items": text,
            },
            "fail-on": {"enum": ["error", "warning"]},
            "waivers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["rule", "target", "reason", "expires"],
                    "properties": {
                        "rule": {"enum": sorted(catalog())},
                        "target": {**text, "description": "glob on the target reference"},
                        "digest": {"type": "string", "pattern": _DIGEST.pattern},
                        "reason": text,
                        "expires": {"type": "string", "pattern": _DATE, "format": "date"},
                    },
                },
            },
        },
    }


# --- one run: the command line over the config ------------------------------------------------------------------


@dataclass
class Settled:
    """What a command runs with once the command line and the config file are merged."""

    config: Config | None
    policies: list[str]
    targets: list[str]
    profiles: list[str]
    registries: dict[str, str]
    fail_on: str
    waivers: list[Waiver]
    notices: list[str]

    def waive(self, results: list[Result], top_digest: str, today: dt.date | None = None) -> None:
        for result in results:
            apply_waivers(result, self.waivers, top_digest, today)


def settle(
    config: str | None,
    no_waivers: bool,
    policies: list[str],
    targets: list[str],
    profiles: list[str],
    fail_on: str | None,
) -> Settled:
    """Command-line options beat the config: targets/profiles replace its targets, --fail-on its fail-on."""
    path = discover(config)
    cfg = load(path) if path else None
    notices = [f"config: {path}"] if path else []
    if not targets and not profiles and cfg:
        for target in cfg.targets:
            option, value = target.option()
            (targets if option == "--target" else profiles).append(value)
    fail_on = fail_on or (cfg.fail_on if cfg else None) or "error"
    if fail_on not in ("error", "warning"):
        raise UsageError(f"--fail-on {fail_on!r} is not error or warning", "pick one of them")
    waivers = cfg.waivers if cfg else []
    if no_waivers and waivers:
        notices.append(f"--no-waivers: the config's {len(waivers)} waiver(s) were ignored")
        waivers = []
    return Settled(
        config=cfg,
        policies=[*(cfg.policies if cfg else []), *policies],
        targets=list(targets),
        profiles=list(profiles),
        registries=dict(cfg.registries) if cfg else {},
        fail_on=fail_on,
        waivers=waivers,
        notices=notices,
    )
