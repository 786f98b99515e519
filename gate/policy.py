"""Policies: YAML profiles that say which rules run for a registry, at what severity, from which version.

A profile file:

    name: quay
    summary: Red Hat Quay and quay.io
    kind: registry                  # or consumer (a runtime such as aws-lambda)
    extends: oci                    # explicit inheritance; nothing is merged implicitly
    hosts: [quay.io]                # exact hosts or globs (*.azurecr.io); the most specific match wins
    versions: {default: saas, known: ["3.12", "3.17.4", "3.18"]}
    rules:
      mixed-oci-index:              # a mapping, or a list of variants: the first whose `when` matches wins
        - when: [saas, "<3.17.4"]   # alternatives; each is "saas" or comma-joined constraints (">=3.9,<3.12")
          severity: error           # error, warning, info or off
          evidence: S               # S sourced, R reported, I inferred
          sources: [https://...]
          note: refused with MANIFEST_INVALID until PROJQUAY-11637
        - severity: "off"

Resolution walks `extends` first, then applies this profile's matching variant key by key, so a user profile
can say just `severity: warning` and keep the parent's sources and parameters.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gate.errors import UsageError
from gate.rules import Rule, catalog

LEVELS = ("error", "warning", "info", "off")
EVIDENCE = ("S", "R", "I")
PROFILE_KEYS = ("name", "summary", "kind", "extends", "hosts", "versions", "rules", "description")
ENTRY_KEYS = ("when", "severity", "params", "sources", "evidence", "note")
_VERSION = re.compile(r"^\d+(?:\.\d+)*(?:\.x)?$")
_CONSTRAINT = re.compile(r"^(<=|>=|==|!=|<|>)?\s*(\d+(?:\.\d+)*)$")


class PolicyError(UsageError):
    """A policy file is wrong: names the file, the line, what is wrong and the nearest valid name."""


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- YAML with line numbers and without aliases -----------------------------------------------------------------


class Lined(dict[str, Any]):
    """A mapping that remembers the line of each key."""

    line: int = 0
    lines: dict[str, int]


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise PolicyError(
                f"{self.name}:{event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed in a policy",
                "write the value out",
            )
        return super().compose_node(parent, index)


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Lined:
    out = Lined()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise PolicyError(f"{loader.name}:{key_node.start_mark.line + 1}: keys must be strings, not {key!r}")
        if key in out:
            raise PolicyError(f"{loader.name}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path, text: str | None = None) -> Any:
    if text is None:
        try:
            if path.stat().st_size > 1024 * 1024:
                raise PolicyError(f"{path}: larger than 1 MiB", "a policy is a short YAML file")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read policy {path}: {exc}", "pass a readable YAML file") from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PolicyError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})", "fix the syntax") from None
    finally:
        loader.dispose()


# --- versions ---------------------------------------------------------------------------------------------------


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.replace(".x", "").split("."))


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def version_matches(version: str, when: list[str]) -> bool:
    """Does `version` ("saas", "3.12", "2.x") satisfy any alternative in `when`?"""
    for alternative in when:
        if alternative == version:
            return True
        if not _VERSION.match(version):
            continue
        ok = True
        for constraint in alternative.split(","):
            m = _CONSTRAINT.match(constraint.strip())
            if not m:
                ok = False
                break
            op, bound = m.group(1) or "==", version_tuple(m.group(2))
            c = _cmp(version_tuple(version), bound)
            ok = {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0, "==": c == 0, "!=": c != 0}[op]
            if not ok:
                break
        if ok:
            return True
    return False


# --- profiles ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    when: tuple[str, ...] | None
    values: dict[str, Any]
    origin: str


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    kind: str
    extends: str | None
    hosts: tuple[str, ...]
    default_version: str | None
    known_versions: tuple[str, ...]
    rules: dict[str, tuple[Entry, ...]]
    origin: str
    builtin: bool = False


@dataclass(frozen=True)
class Setting:
    """A rule as one target runs it."""

    rule: Rule
    severity: str
    params: dict[str, Any]
    sources: tuple[str, ...]
    evidence: str | None = None
    note: str | None = None
    origin: str = ""


@dataclass
class Effective:
    profile: str
    version: str | None
    settings: dict[str, Setting] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.profile}@{self.version}" if self.version else self.profile

    def active(self) -> list[Setting]:
        return [s for s in self.settings.values() if s.severity != "off"]


def _fail(origin: str, problem: str, fix: str | None = None) -> PolicyError:
    return PolicyError(f"{origin}: {problem}", fix)


def _check_keys(data: Lined, allowed: Iterable[str], where: str, path: str) -> None:
    for key in data:
        if key not in allowed:
            line = data.lines.get(key, data.line)
            raise _fail(f"{path}:{line}", f"unknown key {key!r} in {where}{_suggest(key, allowed)}")


def _entry(rule_id: str, value: Any, path: str, line: int, rules: dict[str, Rule]) -> Entry:
    origin = f"{path}:{line}"
    if not isinstance(value, Lined):
        raise _fail(origin, f"rule {rule_id!r} must be a mapping (severity, params, sources, ...)")
    _check_keys(value, ENTRY_KEYS, f"rule {rule_id!r}", path)
    when = value.get("when")
    if when is not None:
        when = [when] if isinstance(when, str) else when
        if not isinstance(when, list) or not all(isinstance(w, str) for w in when):
            raise _fail(f"{path}:{value.lines['when']}", f"{rule_id}.when must be a version condition or a list")
        for alternative in when:
            if (
                alternative != "saas"
                and not _VERSION.match(alternative)
                and not all(_CONSTRAINT.match(c.strip()) for c in alternative.split(","))
            ):
                raise _fail(
                    f"{path}:{value.lines['when']}",
                    f"{rule_id}.when: {alternative!r} is not a version condition",
                    'write "saas", "3.12", "<3.17.4" or ">=3.9,<3.12"',
                )
    severity = value.get("severity")
    if severity is False:  # YAML 1.1 reads a bare `off` as false
        severity = "off"
    if severity is not None and severity not in LEVELS:
        raise _fail(
            f"{path}:{value.lines['severity']}",
            f"{rule_id}.severity: {severity!r} is not one of {', '.join(LEVELS)}{_suggest(str(severity), LEVELS)}",
        )
    params = value.get("params", {})
    if not isinstance(params, dict):
        raise _fail(f"{path}:{value.lines['params']}", f"{rule_id}.params must be a mapping")
    known = rules[rule_id].params
    for key in params:
        if key not in known:
            line = params.lines.get(key, value.line) if isinstance(params, Lined) else value.line
            hint = f"; it takes {', '.join(known)}" if known else "; it takes no parameters"
            raise _fail(f"{path}:{line}", f"rule {rule_id!r} has no parameter {key!r}{_suggest(key, known)}{hint}")
    sources = value.get("sources")
    if sources is not None and not (isinstance(sources, list) and all(isinstance(s, str) for s in sources)):
        raise _fail(f"{path}:{value.lines['sources']}", f"{rule_id}.sources must be a list of URLs")
    evidence = value.get("evidence")
    if evidence is not None and evidence not in EVIDENCE:
        raise _fail(f"{path}:{value.lines['evidence']}", f"{rule_id}.evidence must be S, R or I")
    values = {k: v for k, v in value.items() if k != "when"}
    if severity is not None:
        values["severity"] = severity
    return Entry(tuple(when) if when is not None else None, values, origin)


def parse_profile(path: Path, data: Any, builtin: bool = False) -> Profile:
    if not isinstance(data, Lined):
        raise _fail(str(path), "a policy file must be a YAML mapping with at least `name` and `rules`")
    _check_keys(data, PROFILE_KEYS, "the policy", str(path))
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise _fail(f"{path}:{data.lines.get('name', 1)}", "`name` must be a lowercase word (e.g. my-quay)")
    rules = catalog()
    raw_rules = data.get("rules", {})
    if not isinstance(raw_rules, Lined):
        raise _fail(f"{path}:{data.lines.get('rules', 1)}", "`rules` must be a mapping of rule id to settings")
    parsed: dict[str, tuple[Entry, ...]] = {}
    for rule_id, value in raw_rules.items():
        line = raw_rules.lines[rule_id]
        if rule_id not in rules:
            raise _fail(
                f"{path}:{line}",
                f"unknown rule {rule_id!r}{_suggest(rule_id, rules)}",
                "`registry-gate rules` lists them",
            )
        variants = value if isinstance(value, list) else [value]
        parsed[rule_id] = tuple(_entry(rule_id, v, str(path), line, rules) for v in variants)
    hosts = data.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise _fail(f"{path}:{data.lines.get('hosts', 1)}", "`hosts` must be a list of host names or globs")
    versions = data.get("versions") or {}
    if not isinstance(versions, dict):
        raise _fail(f"{path}:{data.lines.get('versions', 1)}", "`versions` must be {default: V, known: [...]}")
    kind = data.get("kind", "registry")
    if kind not in ("registry", "consumer"):
        raise _fail(f"{path}:{data.lines.get('kind', 1)}", "`kind` must be registry or consumer")
    extends = data.get("extends")
    if extends is not None and not isinstance(extends, str):
        raise _fail(f"{path}:{data.lines.get('extends', 1)}", "`extends` must name one profile")
    default_version = versions.get("default")
    return Profile(
        name=name,
        summary=str(data.get("summary", "")),
        kind=kind,
        extends=extends,
        hosts=tuple(h.lower() for h in hosts),
        default_version=str(default_version) if default_version is not None else None,
        known_versions=tuple(str(v) for v in versions.get("known", [])),
        rules=parsed,
        origin=str(path),
        builtin=builtin,
    )


def builtin_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "policies"
    return packaged if packaged.is_dir() else here.parent / "policies"


@cache
def _builtin(path: Path) -> Profile:
    return parse_profile(path, load_yaml(path), builtin=True)


class Registry:
    """The profiles known to one run: the built-ins plus any `--policy` files."""

    def __init__(self, policy_files: Iterable[str] = ()) -> None:
        self.profiles: dict[str, Profile] = {}
        for path in sorted(builtin_dir().glob("*.yaml")):
            profile = _builtin(path)
            self.profiles[profile.name] = profile
        for file in policy_files:
            self.add_file(Path(file))

    def add_file(self, path: Path) -> Profile:
        if path.is_dir():
            raise PolicyError(f"{path} is a directory", "pass the policy YAML files themselves")
        profile = parse_profile(path, load_yaml(path))
        if profile.name in self.profiles:
            raise PolicyError(
                f"{path}: a profile named {profile.name!r} already exists ({self.profiles[profile.name].origin})",
                f"give yours another name and write `extends: {profile.name}`",
            )
        self.profiles[profile.name] = profile
        self.resolve(profile.name, None)  # validates `extends` now, with the file name in the error
        return profile

    def get(self, name: str) -> Profile:
        if name not in self.profiles:
            raise UsageError(
                f"unknown profile {name!r}{_suggest(name, self.profiles)}",
                "`registry-gate profiles` lists them; --policy FILE adds your own",
            )
        return self.profiles[name]

    def resolve(self, name: str, version: str | None, _seen: tuple[str, ...] = ()) -> Effective:
        profile = self.get(name)
        if name in _seen:
            raise PolicyError(f"{profile.origin}: `extends` loops: {' -> '.join((*_seen, name))}")
        if version is not None and not (version == "saas" or _VERSION.match(version)):
            raise UsageError(f"{name}@{version}: {version!r} is not a version", f"write {name}@3.12 or {name}@saas")
        effective_version = version if version is not None else profile.default_version
        effective = self.resolve(profile.extends, version, (*_seen, name)) if profile.extends else Effective(name, None)
        effective.profile, effective.version = name, version
        for rule_id, variants in profile.rules.items():
            chosen = next(
                (
                    e
                    for e in variants
                    if e.when is None
                    or (effective_version is not None and version_matches(effective_version, list(e.when)))
                ),
                None,
            )
            if chosen is None:
                continue
            rule = catalog()[rule_id]
            base = effective.settings.get(rule_id) or Setting(rule, rule.severity, dict(rule.params), rule.sources)
            values = chosen.values
            effective.settings[rule_id] = replace(
                base,
                severity=values.get("severity", base.severity),
                params={**base.params, **values.get("params", {})},
                sources=tuple(values["sources"]) if "sources" in values else base.sources,
                evidence=values.get("evidence", base.evidence),
                note=values.get("note", base.note),
                origin=chosen.origin,
            )
        return effective

    def match_host(self, host: str) -> tuple[Profile, str] | None:
        """The profile whose `hosts` match best: exact host:port, exact host, then the longest glob."""
        host = host.lower()
        bare = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
        best: tuple[tuple[int, int], Profile, str] | None = None
        for profile in self.profiles.values():
            for pattern in profile.hosts:
                if pattern == host:
                    score = (3, len(pattern))
                elif pattern == bare:
                    score = (2, len(pattern))
                elif "*" in pattern and (fnmatch.fnmatchcase(host, pattern) or fnmatch.fnmatchcase(bare, pattern)):
                    score = (1, len(pattern.replace("*", "")))
                else:
                    continue
                if best is None or score > best[0] or (score == best[0] and not profile.builtin):
                    best = (score, profile, pattern)
        return (best[1], best[2]) if best else None


def split_profile(spec: str) -> tuple[str, str | None]:
    """`quay@3.12` -> ("quay", "3.12")."""
    name, _, version = spec.partition("@")
    if not name:
        raise UsageError(f"{spec!r} names no profile", "write PROFILE or PROFILE@VERSION, e.g. quay@3.12")
    return name, (version or None)
