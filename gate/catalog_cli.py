"""The commands over the knowledge base: rules, explain, profiles, profiles show, policy validate, policy schema.

Each function returns the text to print (text tables with fixed columns for people and grep, or JSON for
machines) and raises `UsageError` for bad input; gate/cli.py only wires them to typer.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gate.errors import UsageError
from gate.policy import Effective, PolicyError, Profile, Registry, Setting, _suggest, split_profile
from gate.rules import Rule, catalog

FORMATS = ("text", "json")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}", "pick one of them")


def _json(doc: Any) -> str:
    return json.dumps(doc, indent=2) + "\n"


def _compact(items: list[str], last: bool = False) -> str:
    """A narrow cell: the first item and `+N` (or the first and the last, `3.5..3.18`). JSON has them all."""
    if len(items) <= 1:
        return ",".join(items) or "-"
    return f"{items[0]}..{items[-1]}" if last else f"{items[0]}+{len(items) - 1}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers) - 1)]
    return "".join("  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip() + "\n" for r in rows)


def _rule(rule_id: str) -> Rule:
    rules = catalog()
    if rule_id not in rules:
        raise UsageError(f"unknown rule {rule_id!r}{_suggest(rule_id, rules)}", "`registry-gate rules` lists them")
    return rules[rule_id]


# --- rules ----------------------------------------------------------------------------------------------------


def rules_command(fmt: str) -> str:
    _check_format(fmt)
    rules = sorted(catalog().values(), key=lambda r: (r.family, r.id))
    if fmt == "json":
        return _json(
            {
                "schema": "registry-gate/rules/v1",
                "rules": [
                    {
                        "id": r.id,
                        "family": r.family,
                        "severity": r.severity,
                        "summary": r.summary,
                        "params": dict(r.params),
                        "fix": r.fix,
                        "sources": list(r.sources),
                    }
                    for r in rules
                ],
            }
        )
    return _table(("RULE", "FAMILY", "SEVERITY", "SUMMARY"), ((r.id, r.family, r.severity, r.summary) for r in rules))


# --- explain ----------------------------------------------------------------------------------------------------


def example_parts(example: Mapping[str, Any]) -> dict[str, Any]:
    """The example as bytes: the top, each child by its name, each "%text" blob; digests and JSON documents."""
    from gate import manifest as mf
    from gate.rules.examples import materialize

    top, manifests, blobs = materialize(example)
    children = example.get("children", {})
    names, _, _ = materialize({"top": {name: f"@{name}" for name in children}, "children": children})
    by_name = json.loads(names)
    return {
        "top": {"digest": mf.digest_of(top), "size": len(top), "document": json.loads(top)},
        "children": {
            name: {"digest": d, "size": len(manifests[d]), "document": json.loads(manifests[d])}
            for name, d in by_name.items()
        },
        "blobs": {d: data.decode(errors="replace") for d, data in blobs.items()},
        "target": example.get("target"),
    }


def example_hits(rule: Rule, example: Mapping[str, Any]) -> list[str]:
    """What the rule (with its default parameters) reports on the example: `path: message` per hit."""
    from gate.rules.examples import context

    return [f"{h.node.at(h.path) or '(top)'}: {h.message}" for h in rule.check(context(example), rule.params)]


def rule_usage(rule_id: str, registry: Registry) -> list[dict[str, Any]]:
    """Each profile's severity for the rule, per version (its default first, then the known ones).

    `severity` maps each severity to the versions that run the rule at it and the file:line that set it.
    """
    out = []
    for name in sorted(registry.profiles):
        default = registry.default_version(name)
        versions = list(dict.fromkeys([default, *registry.known_versions(name)]))
        severities: dict[str, dict[str, Any]] = {}
        for version in versions:
            setting = registry.resolve(name, version).settings.get(rule_id)
            severity = setting.severity if setting else "off"
            group = severities.setdefault(severity, {"versions": [], "from": None})
            if version is not None:
                group["versions"].append(version)
            if setting and group["from"] is None:
                group["from"] = setting.origins.get("severity", setting.origin)
        out.append({"profile": name, "kind": registry.profiles[name].kind, "severity": severities})
    return out


def explain_command(rule_id: str, policy_files: Sequence[str], fmt: str) -> str:
    _check_format(fmt)
    rule = _rule(rule_id)
    registry = Registry(policy_files)
    examples = {k: v for k, v in (("passing", rule.passing), ("failing", rule.failing)) if v is not None}
    parts = {k: example_parts(v) for k, v in examples.items()}
    hits = {k: example_hits(rule, v) for k, v in examples.items()}
    usage = rule_usage(rule.id, registry)
    if fmt == "json":
        return _json(
            {
                "schema": "registry-gate/explain/v1",
                "id": rule.id,
                "family": rule.family,
                "severity": rule.severity,
                "summary": rule.summary,
                "doc": rule.doc,
                "params": dict(rule.params),
                "needs_children": rule.needs_children,
                "examples": {k: {**parts[k], "findings": hits[k]} for k in examples},
                "fix": rule.fix,
                "sources": list(rule.sources),
                "profiles": usage,
            }
        )
    lines = [f"{rule.id}: {rule.summary}", f"family: {rule.family}    default severity: {rule.severity}", ""]
    body = inspect.cleandoc(rule.doc).splitlines()[1:]
    lines += [line.rstrip() for line in body if line.strip() or lines[-1]]
    if lines[-1]:
        lines.append("")
    lines.append("parameters:" if rule.params else "parameters: none")
    lines += [f"  {k} = {json.dumps(v)}" for k, v in rule.params.items()]
    if rule.needs_children:
        lines.append("needs child manifests: yes (skipped when they could not be inspected)")
    for kind in ("passing", "failing"):
        lines.append("")
        if kind not in parts:
            lines.append(f"{kind} example: none")
            continue
        p = parts[kind]
        lines.append(f"{kind} example:")
        if p["target"]:
            lines.append(f"  target {p['target']}")
        lines.append(f"  top {p['top']['digest']} ({p['top']['size']} bytes):")
        lines += _indent(json.dumps(p["top"]["document"], indent=2), 4)
        for name, child in p["children"].items():
            lines.append(f"  child {name} {child['digest']} ({child['size']} bytes):")
            lines += _indent(json.dumps(child["document"], indent=2), 4)
        for digest, text in p["blobs"].items():
            lines.append(f"  blob {digest}: {json.dumps(text)}")
        verdict = hits[kind] or ["nothing"]
        lines.append(f"  {rule.id} reports: " + verdict[0])
        lines += [f"  {rule.id} reports: {h}" for h in verdict[1:]]
    lines += ["", f"fix: {rule.fix or 'none given'}", "", "sources:"]
    lines += [f"  {s}" for s in rule.sources]
    lines += ["", "profiles:"]
    width = max(len(u["profile"]) for u in usage)
    for u in usage:
        groups = u["severity"].items()
        text = "; ".join(
            (f"{s} at {', '.join(g['versions'])}" if len(groups) > 1 else s) + f" ({g['from'] or 'not listed'})"
            for s, g in groups
        )
        lines.append(f"  {u['profile'].ljust(width)}  {text}")
    return "\n".join(lines) + "\n"


def _indent(text: str, n: int) -> list[str]:
    return [" " * n + line for line in text.splitlines()]


# --- profiles -----------------------------------------------------------------------------------------------------


def profiles_command(policy_files: Sequence[str], fmt: str) -> str:
    _check_format(fmt)
    registry = Registry(policy_files)
    profiles = [registry.profiles[n] for n in sorted(registry.profiles)]

    def row(p: Profile) -> dict[str, Any]:
        return {
            "name": p.name,
            "kind": p.kind,
            "hosts": list(p.hosts),
            "default_version": registry.default_version(p.name),
            "known_versions": list(registry.known_versions(p.name)),
            "extends": p.extends,
            "summary": p.summary,
            "file": p.origin,
            "builtin": p.builtin,
        }

    rows = [row(p) for p in profiles]
    if fmt == "json":
        return _json({"schema": "registry-gate/profiles/v1", "profiles": rows})
    return _table(
        ("PROFILE", "KIND", "HOSTS", "DEFAULT", "KNOWN", "EXTENDS", "SUMMARY"),
        (
            (
                r["name"],
                r["kind"],
                _compact(r["hosts"]),
                r["default_version"] or "-",
                _compact(r["known_versions"], last=True),
                r["extends"] or "-",
                r["summary"] + ("" if r["builtin"] else f" [{r['file']}]"),
            )
            for r in rows
        ),
    )


def _setting_json(rule_id: str, setting: Setting | None) -> dict[str, Any]:
    if setting is None:
        rule = catalog()[rule_id]
        return {
            "id": rule_id,
            "severity": "off",
            "listed": False,
            "params": dict(rule.params),
            "evidence": None,
            "note": None,
            "sources": list(rule.sources),
            "from": {},
        }
    return {
        "id": rule_id,
        "severity": setting.severity,
        "listed": True,
        "params": setting.params,
        "evidence": setting.evidence,
        "note": setting.note,
        "sources": list(setting.sources),
        "from": dict(setting.origins),
    }


def show_profile(spec: str, policy_files: Sequence[str]) -> dict[str, Any]:
    """The effective rules of PROFILE[@VERSION] as a JSON-ready mapping."""
    name, version = split_profile(spec)
    registry = Registry(policy_files)
    effective: Effective = registry.resolve(name, version)
    default = registry.default_version(name)
    known = registry.known_versions(name)
    used = version or default
    notices = []
    if version is not None and known and version not in known and version != "saas":
        notices.append(
            f"{name}@{version}: not a known version of {name} ({', '.join(known)}); "
            "version conditions are applied to it as written"
        )
    if version is not None and not known and version != default:
        notices.append(f"{name} declares no versions: @{version} only matters to `when` conditions")
    ids = sorted(catalog(), key=lambda i: (effective.settings.get(i) is None, i))
    return {
        "schema": "registry-gate/profile/v1",
        "profile": name,
        "version": used,
        "version_is_default": version is None,
        "default_version": default,
        "known_versions": list(known),
        "chain": [p.name for p in registry.chain(name)],
        "file": registry.get(name).origin,
        "notices": notices,
        "warnings": registry.warnings(name),
        "rules": [_setting_json(i, effective.settings.get(i)) for i in ids],
    }


def profile_show_command(spec: str, policy_files: Sequence[str], fmt: str) -> str:
    _check_format(fmt)
    doc = show_profile(spec, policy_files)
    if fmt == "json":
        return _json(doc)
    label = f"{doc['profile']}@{doc['version']}" if doc["version"] else doc["profile"]
    lines = [
        f"profile: {label}" + (" (default version)" if doc["version_is_default"] and doc["version"] else ""),
        f"file: {doc['file']}",
        f"extends: {' -> '.join(doc['chain'][1:]) or '-'}",
        f"versions: default {doc['default_version'] or '-'}; known {', '.join(doc['known_versions']) or '-'}",
    ]
    lines += [f"notice: {n}" for n in doc["notices"]]
    lines += doc["warnings"]
    lines.append("")
    for r in doc["rules"]:
        where = r["from"].get("severity", "not listed in the profile or its parents")
        evidence = f" [{r['evidence']}]" if r["evidence"] else ""
        lines.append(f"{r['id']}: {r['severity']}{evidence}  ({where})")
        if not r["listed"]:
            continue
        for k, v in r["params"].items():
            lines.append(f"    param {k} = {json.dumps(v)}  ({r['from'].get(f'params.{k}', '?')})")
        if r["note"]:
            lines.append(f"    note: {r['note']}  ({r['from'].get('note', '?')})")
        if r["sources"]:
            lines.append(f"    sources: ({r['from'].get('sources', '?')})")
            lines += [f"      {s}" for s in r["sources"]]
    return "\n".join(lines) + "\n"


# --- policy validate / schema -------------------------------------------------------------------------------------


def validate_command(files: Sequence[str]) -> tuple[str, str, int]:
    """(stdout, stderr, exit code): `FILE: ok` per good file; `file:line: problem` per bad one (exit 2)."""
    from gate.policy import builtin_dir

    registry = Registry()
    builtins = {p.resolve() for p in builtin_dir().glob("*.yaml")}
    out: list[str] = []
    err: list[str] = []
    parsed: list[tuple[str, Profile]] = []
    for file in files:
        try:
            profile = registry.parse_file(Path(file))
            if Path(file).resolve() in builtins and profile.name in registry.profiles:
                registry.profiles[profile.name] = profile  # a built-in re-read as it is on disk now
            else:
                registry.add(profile)
            parsed.append((file, profile))
        except PolicyError as exc:
            err.append(str(exc))
    for file, profile in parsed:
        try:
            registry.check_links(profile)
            registry.resolve(profile.name, None)
        except UsageError as exc:
            err.append(str(exc))
            continue
        err += registry.warnings(profile.name)
        out.append(f"{file}: ok")
    code = 2 if any(": warning: " not in e for e in err) else 0
    return "".join(f"{o}\n" for o in out), "".join(f"{e}\n" for e in err), code


def schema_command() -> str:
    from gate.policy_schema import schema

    return _json(schema())
