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
can say just `severity: warning` and keep the parent's sources and parameters. A profile without `versions`
takes its parent's (default and known), so `extends: quay` alone still resolves quay's version conditions.

Validation is strict and fails with `file:line: what is wrong (did you mean ...)`: unknown keys, rule ids and
parameters, wrong types, unquoted versions (YAML reads 3.10 as the number 3.1), `extends` of an unknown
profile or in a loop, YAML aliases, and regular-expression parameters (names ending in `pattern`) that do not
compile or nest unbounded quantifiers (`(a+)+`, catastrophic backtracking). A `when` that can never match a
`known` version (an exact version missing from `known`, or a range no known version falls in) is a warning,
not an error: the variant still applies to a version asked for explicitly, so `policy validate` reports it and
exits 0.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gate.errors import UsageError
from gate.rules import Rule, catalog

LEVELS = ("error", "warning", "info", "off")
EVIDENCE = ("S", "R", "I")
KINDS = ("registry", "consumer")
PROFILE_KEYS = ("name", "summary", "kind", "extends", "hosts", "versions", "rules", "description")
VERSION_KEYS = ("default", "known")
ENTRY_KEYS = ("when", "severity", "params", "sources", "evidence", "note")
NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"
VERSION_RE = r"^\d+(?:\.\d+)*(?:\.x)?$"
_NAME = re.compile(NAME_RE)
_VERSION = re.compile(VERSION_RE)
_CONSTRAINT = re.compile(r"^(<=|>=|==|!=|<|>)?\s*(\d+(?:\.\d+)*)$")
_URL = re.compile(r"^https?://\S+$")
_HOST = re.compile(r"^[a-z0-9*\[\]:._-]+$")


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
    """Safe loading with line numbers (aliases are refused before, at the event level: see `load_yaml`)."""


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
    try:
        # Aliases are refused before anything is built, so an alias bomb ("billion laughs") costs nothing.
        # (The C loader composes nodes in C, where a Python-level hook would never run.)
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise PolicyError(
                    f"{path}:{line}: YAML aliases (*{event.anchor}) are not allowed in a policy",
                    "write the value out",
                )
    except yaml.YAMLError:
        pass  # reported with its line by the load below
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


def _within(version: str, series: str) -> bool:
    """Is `version` a release of `series` ("2.x", "3.12.x")?"""
    prefix = version_tuple(series)
    return version_tuple(version)[: len(prefix)] == prefix


def is_condition(alternative: str) -> bool:
    """Is `alternative` "saas", a version, or comma-joined constraints?"""
    return (
        alternative == "saas"
        or bool(_VERSION.match(alternative))
        or all(_CONSTRAINT.match(c.strip()) for c in alternative.split(","))
    )


def version_matches(version: str, when: Iterable[str]) -> bool:
    """Does `version` ("saas", "3.12", "2.x") satisfy any alternative in `when`?"""
    for alternative in when:
        if alternative == version:
            return True
        if not _VERSION.match(version):
            continue
        if alternative.endswith(".x"):  # "3.12.x": every 3.12 release
            if _within(version, alternative):
                return True
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


# --- regular-expression parameters --------------------------------------------------------------------------------


def is_pattern_param(name: str) -> bool:
    """Parameters whose name ends in `pattern` (or `patterns`, a list) hold regular expressions."""
    return name.endswith(("pattern", "patterns"))


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is refused (does not compile, or nests unbounded quantifiers), or None when it is fine."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a regular expression ({exc})"
    sre_c, sre_p = _sre()
    repeats = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT)

    def unbounded(items: Any) -> bool:
        """Does this subpattern contain a repeat with no upper bound?"""
        return any(
            (op in repeats and av[1] == sre_c.MAXREPEAT) or any(unbounded(s) for s in _subpatterns(op, av))
            for op, av in items
        )

    def nested(items: Any) -> bool:
        for op, av in items:
            if op in repeats and av[1] == sre_c.MAXREPEAT and unbounded(av[2]):
                return True
            if any(nested(s) for s in _subpatterns(op, av)):
                return True
        return False

    def _subpatterns(op: Any, av: Any) -> list[Any]:
        if op in repeats:
            return [av[2]]
        if op == sre_c.SUBPATTERN:
            return [av[3]]
        if op == sre_c.BRANCH:
            return list(av[1])
        if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            return [av[1]]
        return []

    if nested(sre_p.parse(pattern)):
        return "nests unbounded quantifiers (like (a+)+), which can backtrack for ever"
    return None


def _sre() -> tuple[Any, Any]:
    """The stdlib's regex parser (re._parser since 3.11, sre_parse before)."""
    import importlib

    try:
        return importlib.import_module("re._constants"), importlib.import_module("re._parser")
    except ImportError:  # Python 3.10
        return importlib.import_module("sre_constants"), importlib.import_module("sre_parse")


# --- profiles ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    when: tuple[str, ...] | None
    values: dict[str, Any]
    origin: str
    """file:line of the variant."""
    origins: dict[str, str] = field(default_factory=dict)
    """file:line of each key (`params.NAME` for each parameter)."""


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
    lines: Mapping[str, int] = field(default_factory=dict)
    """Line of each top-level key."""
    has_versions: bool = False
    """Whether the file says `versions` (otherwise they come from `extends`)."""

    def at(self, key: str) -> str:
        return f"{self.origin}:{self.lines.get(key, 1)}"


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
    origins: Mapping[str, str] = field(default_factory=dict)
    """Where each value came from: "severity", "sources", "evidence", "note", "params.NAME" -> file:line."""


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


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, dict) else type(value).__name__
    )


def _same_type(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, dict):
        return isinstance(value, dict)
    if isinstance(default, list) and default and isinstance(value, list):
        return all(_same_type(v, default[0]) for v in value)
    return isinstance(value, type(default))


def _check_params(rule_id: str, params: Any, known: Mapping[str, Any], path: str, line: int) -> dict[str, str]:
    if not isinstance(params, dict):
        raise _fail(f"{path}:{line}", f"{rule_id}.params must be a mapping of parameter to value")
    origins = {}
    for key, value in params.items():
        at = f"{path}:{params.lines.get(key, line) if isinstance(params, Lined) else line}"
        if key not in known:
            hint = f"; it takes {', '.join(known)}" if known else "; it takes no parameters"
            raise _fail(at, f"rule {rule_id!r} has no parameter {key!r}{_suggest(key, known)}{hint}")
        if not _same_type(value, known[key]):
            raise _fail(
                at,
                f"{rule_id}.params.{key} must be {_type_name(known[key])}, not {value!r}",
                f"the default is {known[key]!r}",
            )
        if is_pattern_param(key):
            patterns = value if isinstance(value, list) else [value]
            for pattern in patterns:
                problem = regex_problem(pattern) if isinstance(pattern, str) else "is not a string"
                if problem:
                    raise _fail(at, f"{rule_id}.params.{key}: {pattern!r} {problem}", "write a simpler pattern")
        origins[f"params.{key}"] = at
    return origins


def _entry(rule_id: str, value: Any, path: str, line: int, rules: Mapping[str, Rule]) -> Entry:
    if not isinstance(value, Lined):
        raise _fail(f"{path}:{line}", f"rule {rule_id!r} must be a mapping (severity, params, sources, ...)")
    origin = f"{path}:{value.line}"
    _check_keys(value, ENTRY_KEYS, f"rule {rule_id!r}", path)
    at = {key: f"{path}:{value.lines[key]}" for key in value}
    when = value.get("when")
    if when is not None:
        when = [when] if isinstance(when, str) else when
        if not isinstance(when, list) or not when or not all(isinstance(w, str) for w in when):
            raise _fail(
                at["when"],
                f"{rule_id}.when must be a quoted version condition or a list of them, not {value['when']!r}",
                'quote versions: when: "3.12" (YAML reads 3.10 as the number 3.1)',
            )
        for alternative in when:
            if not is_condition(alternative):
                raise _fail(
                    at["when"],
                    f"{rule_id}.when: {alternative!r} is not a version condition",
                    'write "saas", "3.12", "<3.17.4" or ">=3.9,<3.12"',
                )
    severity = value.get("severity")
    if severity is False:  # YAML 1.1 reads a bare `off` as false
        severity = "off"
    if severity is not None and severity not in LEVELS:
        raise _fail(
            at["severity"],
            f"{rule_id}.severity: {severity!r} is not one of {', '.join(LEVELS)}{_suggest(str(severity), LEVELS)}",
        )
    origins = {k: v for k, v in at.items() if k not in ("when", "params")}
    if "params" in value:
        origins.update(_check_params(rule_id, value["params"], rules[rule_id].params, path, value.lines["params"]))
    sources = value.get("sources")
    if sources is not None:
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise _fail(at["sources"], f"{rule_id}.sources must be a list of URLs")
        for source in sources:
            if not _URL.match(source):
                raise _fail(at["sources"], f"{rule_id}.sources: {source!r} is not an http(s) URL", "cite a public URL")
    evidence = value.get("evidence")
    if evidence is not None and evidence not in EVIDENCE:
        raise _fail(at["evidence"], f"{rule_id}.evidence must be S, R or I (sourced, reported, inferred)")
    note = value.get("note")
    if note is not None and not isinstance(note, str):
        raise _fail(at["note"], f"{rule_id}.note must be a string")
    values = {k: v for k, v in value.items() if k != "when"}
    if severity is not None:
        values["severity"] = severity
    return Entry(tuple(when) if when is not None else None, values, origin, origins)


def _versions(data: Lined, path: Path) -> tuple[str | None, tuple[str, ...]]:
    versions = data.get("versions")
    at = f"{path}:{data.lines.get('versions', 1)}"
    if versions is None:
        return None, ()
    if not isinstance(versions, Lined):
        raise _fail(at, '`versions` must be a mapping: {default: "V", known: ["V", ...]}')
    _check_keys(versions, VERSION_KEYS, "`versions`", str(path))
    quote = 'quote versions ("3.10"): YAML reads 3.10 as the number 3.1'
    known = versions.get("known", [])
    if not isinstance(known, list):
        raise _fail(f"{path}:{versions.lines['known']}", "`versions.known` must be a list of versions", quote)
    for v in known:
        if not isinstance(v, str) or not (v == "saas" or _VERSION.match(v)):
            raise _fail(f"{path}:{versions.lines['known']}", f"`versions.known`: {v!r} is not a quoted version", quote)
    if len(set(known)) != len(known):
        raise _fail(f"{path}:{versions.lines['known']}", "`versions.known` lists a version twice")
    default = versions.get("default")
    if default is not None:
        where = f"{path}:{versions.lines['default']}"
        if not isinstance(default, str) or not (default == "saas" or _VERSION.match(default)):
            raise _fail(where, f"`versions.default`: {default!r} is not a quoted version or saas", quote)
        if known and default != "saas" and default not in known:
            raise _fail(
                where,
                f"`versions.default` {default!r} is not in `versions.known`{_suggest(default, known)}",
                "add it to known",
            )
    return default, tuple(known)


def parse_profile(path: Path, data: Any, builtin: bool = False) -> Profile:
    if not isinstance(data, Lined):
        raise _fail(str(path), "a policy file must be a YAML mapping with at least `name` and `rules`")
    _check_keys(data, PROFILE_KEYS, "the policy", str(path))

    def at(key: str) -> str:
        return f"{path}:{data.lines.get(key, 1)}"

    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(at("name"), "`name` must be a lowercase word (e.g. my-quay)")
    for key in ("summary", "description"):
        if key in data and not isinstance(data[key], str):
            raise _fail(at(key), f"`{key}` must be a string")
    rules = catalog()
    raw_rules = data.get("rules")
    if raw_rules is None:
        raw_rules = Lined()
        raw_rules.lines = {}
    if not isinstance(raw_rules, Lined):
        raise _fail(at("rules"), "`rules` must be a mapping of rule id to settings")
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
        if not variants:
            raise _fail(f"{path}:{line}", f"rule {rule_id!r} has an empty list of variants")
        parsed[rule_id] = tuple(_entry(rule_id, v, str(path), line, rules) for v in variants)
        for variant in parsed[rule_id][:-1]:
            if variant.when is None:
                raise _fail(
                    variant.origin,
                    f"rule {rule_id!r}: a variant without `when` must come last (the ones after it never apply)",
                )
    hosts = data.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and _HOST.match(h.lower()) for h in hosts):
        raise _fail(at("hosts"), "`hosts` must be a list of host names, host:port or globs (*.example.com)")
    default_version, known_versions = _versions(data, path)
    kind = data.get("kind", "registry")
    if kind not in KINDS:
        raise _fail(at("kind"), f"`kind` must be registry or consumer, not {kind!r}{_suggest(str(kind), KINDS)}")
    extends = data.get("extends")
    if extends is not None and (not isinstance(extends, str) or not _NAME.match(extends)):
        raise _fail(at("extends"), "`extends` must name one profile (e.g. extends: quay)")
    return Profile(
        name=name,
        summary=str(data.get("summary", "")),
        kind=kind,
        extends=extends,
        hosts=tuple(h.lower() for h in hosts),
        default_version=default_version,
        known_versions=known_versions,
        rules=parsed,
        origin=str(path),
        builtin=builtin,
        lines=dict(data.lines),
        has_versions="versions" in data,
    )


def builtin_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "policies"
    return packaged if packaged.is_dir() else here.parent / "policies"


@cache
def _builtin(path: Path) -> Profile:
    shown = Path("policies") / path.name  # origins read `policies/quay.yaml:14`, wherever the package lives
    return parse_profile(shown, load_yaml(shown, path.read_text(encoding="utf-8")), builtin=True)


class Registry:
    """The profiles known to one run: the built-ins plus any `--policy` files.

    Every file is parsed first and the links checked after, so user files may extend each other in any order.
    """

    def __init__(self, policy_files: Iterable[str] = ()) -> None:
        self.profiles: dict[str, Profile] = {}
        for path in sorted(builtin_dir().glob("*.yaml")):
            self.add(_builtin(path))
        added = [self.add(self.parse_file(Path(file))) for file in policy_files]
        for profile in [p for p in self.profiles.values() if p.builtin] + added:
            self.check_links(profile)

    @staticmethod
    def parse_file(path: Path) -> Profile:
        if path.is_dir():
            raise PolicyError(f"{path} is a directory", "pass the policy YAML files themselves")
        return parse_profile(path, load_yaml(path))

    def add(self, profile: Profile) -> Profile:
        if profile.name in self.profiles:
            raise PolicyError(
                f"{profile.at('name')}: a profile named {profile.name!r} already exists "
                f"({self.profiles[profile.name].origin})",
                f"give yours another name and write `extends: {profile.name}`",
            )
        self.profiles[profile.name] = profile
        return profile

    def check_links(self, profile: Profile) -> None:
        """`extends` names a known profile and does not loop (errors name the file and line)."""
        chain = [profile.name]
        current = profile
        while current.extends is not None:
            parent = self.profiles.get(current.extends)
            if parent is None:
                raise PolicyError(
                    f"{current.at('extends')}: `extends: {current.extends}` names no profile"
                    f"{_suggest(current.extends, self.profiles)}",
                    "`registry-gate profiles` lists them; pass your parent with --policy too",
                )
            if parent.name in chain:
                raise PolicyError(
                    f"{profile.at('extends')}: `extends` loops: {' -> '.join((*chain, parent.name))}",
                    "one profile in the loop must extend another (usually oci)",
                )
            chain.append(parent.name)
            current = parent

    def warnings(self, name: str) -> list[str]:
        """Variants of this profile's own rules whose `when` matches none of the known versions."""
        profile = self.get(name)
        known = self.known_versions(name)
        default = self.default_version(name)
        out: list[str] = []
        known = (*known, default) if default and default not in known else known
        for rule_id, variants in profile.rules.items():
            for e in variants:
                for alternative in e.when or ():
                    if alternative in known or any(version_matches(v, [alternative]) for v in known):
                        continue
                    listed = f"the known versions ({', '.join(known)})" if known else "the versions (it declares none)"
                    out.append(
                        f"{e.origin}: warning: {rule_id}.when {alternative!r} matches none of {listed}"
                        f"{_suggest(alternative, known)}; add it to versions.known"
                    )
        return out

    def chain(self, name: str) -> list[Profile]:
        """The profile and its ancestors, nearest first."""
        out = [self.get(name)]
        while out[-1].extends is not None and len(out) <= len(self.profiles):
            out.append(self.get(out[-1].extends))
        return out

    def default_version(self, name: str) -> str | None:
        return next((p.default_version for p in self.chain(name) if p.has_versions), None)

    def known_versions(self, name: str) -> tuple[str, ...]:
        return next((p.known_versions for p in self.chain(name) if p.has_versions), ())

    def series_version(self, name: str, series: str) -> str:
        """`harbor@2.x`: the newest known release of that series (the series as written when none is known)."""
        releases = [v for v in self.known_versions(name) if _VERSION.match(v) and _within(v, series)]
        return max(releases, key=version_tuple, default=series)

    def get(self, name: str) -> Profile:
        if name not in self.profiles:
            raise UsageError(
                f"unknown profile {name!r}{_suggest(name, self.profiles)}",
                "`registry-gate profiles` lists them; --policy FILE adds your own",
            )
        return self.profiles[name]

    def resolve(self, name: str, version: str | None) -> Effective:
        """The settings of every rule `name` runs at `version` (None: the profile's default version)."""
        if version is not None and not (version == "saas" or _VERSION.match(version)):
            raise UsageError(f"{name}@{version}: {version!r} is not a version", f"write {name}@3.12 or {name}@saas")
        effective_version = version if version is not None else self.default_version(name)
        if effective_version is not None and effective_version.endswith(".x"):
            effective_version = self.series_version(name, effective_version)
        effective = Effective(name, version)
        for profile in reversed(self.chain(name)):
            self._apply(profile, effective_version, effective)
        return effective

    @staticmethod
    def _apply(profile: Profile, version: str | None, effective: Effective) -> None:
        for rule_id, variants in profile.rules.items():
            chosen = next(
                (e for e in variants if e.when is None or (version is not None and version_matches(version, e.when))),
                None,
            )
            if chosen is None:
                continue
            rule = catalog()[rule_id]
            base = effective.settings.get(rule_id) or Setting(
                rule, rule.severity, dict(rule.params), rule.sources, origins=_defaults(rule)
            )
            values = chosen.values
            effective.settings[rule_id] = replace(
                base,
                severity=values.get("severity", base.severity),
                params={**base.params, **values.get("params", {})},
                sources=tuple(values["sources"]) if "sources" in values else base.sources,
                evidence=values.get("evidence", base.evidence),
                note=values.get("note", base.note),
                origin=chosen.origin,
                origins={**base.origins, **chosen.origins},
            )

    def match_host(self, host: str) -> tuple[Profile, str] | None:
        """The profile whose `hosts` match best: exact host:port, exact host, then the longest glob.

        On a tie a `--policy` profile beats a built-in (the later file wins among user profiles).
        """
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


def _defaults(rule: Rule) -> dict[str, str]:
    where = f"gate/rules/{rule.family}.py, rule default"
    return {"severity": where, "sources": where, **{f"params.{k}": where for k in rule.params}}


def split_profile(spec: str) -> tuple[str, str | None]:
    """`quay@3.12` -> ("quay", "3.12")."""
    name, _, version = spec.partition("@")
    if not name:
        raise UsageError(f"{spec!r} names no profile", "write PROFILE or PROFILE@VERSION, e.g. quay@3.12")
    return name, (version or None)
