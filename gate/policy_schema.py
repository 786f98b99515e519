"""The JSON Schema (draft 2020-12) of a policy file, for editors (yaml-language-server) and CI linters.

Rule ids and each rule's parameters come from the catalog, so the schema follows the rules that exist.
The schema checks shape only; `registry-gate policy validate` also checks `extends`, versions and regexes.
"""

from __future__ import annotations

from typing import Any

from gate.policy import EVIDENCE, KINDS, LEVELS, NAME_RE, VERSION_RE, is_pattern_param
from gate.rules import Rule, catalog

_VERSION = {"type": "string", "anyOf": [{"const": "saas"}, {"pattern": VERSION_RE}]}
_CONDITION = {"type": "string", "pattern": r"^(saas|\d+(\.\d+)*(\.x)?|((<=|>=|==|!=|<|>)?\s*\d+(\.\d+)*\s*,?\s*)+)$"}


def _param_schema(name: str, default: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"default": default}
    if isinstance(default, bool):
        out["type"] = "boolean"
    elif isinstance(default, int):
        out["type"] = "integer"
    elif isinstance(default, float):
        out["type"] = "number"
    elif isinstance(default, str):
        out["type"] = "string"
    elif isinstance(default, list):
        out["type"] = "array"
        if default:
            out["items"] = {k: v for k, v in _param_schema("", default[0]).items() if k == "type"}
    elif isinstance(default, dict):
        out["type"] = "object"
    if is_pattern_param(name):
        out["description"] = "a regular expression (nested unbounded quantifiers are refused)"
    return out


def _entry(rule: Rule) -> dict[str, Any]:
    return {
        "type": "object",
        "description": rule.summary,
        "additionalProperties": False,
        "properties": {
            "when": {"oneOf": [_CONDITION, {"type": "array", "minItems": 1, "items": _CONDITION}]},
            # YAML 1.1 loaders read a bare `off` as false; it means off.
            "severity": {"enum": [*LEVELS, False]},
            "params": {
                "type": "object",
                "additionalProperties": False,
                "properties": {k: _param_schema(k, v) for k, v in rule.params.items()},
            },
            "sources": {"type": "array", "items": {"type": "string", "pattern": r"^https?://\S+$"}},
            "evidence": {"enum": list(EVIDENCE)},
            "note": {"type": "string"},
        },
    }


def schema() -> dict[str, Any]:
    rules = catalog()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "registry-gate policy",
        "description": "A registry profile: which rules run, at what severity, from which version.",
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": NAME_RE},
            "summary": {"type": "string"},
            "description": {"type": "string"},
            "kind": {"enum": list(KINDS)},
            "extends": {"type": "string", "pattern": NAME_RE},
            "hosts": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9*\[\]:._-]+$"}},
            "versions": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"default": _VERSION, "known": {"type": "array", "items": _VERSION}},
            },
            "rules": {
                "type": "object",
                "propertyNames": {"enum": sorted(rules)},
                "properties": {
                    rule_id: {
                        "oneOf": [
                            {"$ref": f"#/$defs/{rule_id}"},
                            {"type": "array", "minItems": 1, "items": {"$ref": f"#/$defs/{rule_id}"}},
                        ]
                    }
                    for rule_id in sorted(rules)
                },
            },
        },
        "$defs": {rule_id: _entry(rules[rule_id]) for rule_id in sorted(rules)},
    }
