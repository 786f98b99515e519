"""Every rule in the catalog documents itself: a summary, sources, and a passing and a failing example that
the rule itself (with its default parameters) tells apart. Parametrized by rule id, so new rules are covered."""

from __future__ import annotations

import re

import pytest

from gate.policy import is_pattern_param, regex_problem
from gate.rules import SEVERITIES, Rule, catalog
from gate.rules.examples import context

RULES = sorted(catalog())
URL = re.compile(r"^https?://[^\s/]+\.[^\s/]+/\S*$")


def _hits(rule: Rule, example: object) -> list[str]:
    assert isinstance(example, dict)
    return [h.message for h in rule.check(context(example), rule.params)]


@pytest.mark.parametrize("rule_id", RULES)
def test_rule_has_both_examples(rule_id: str) -> None:
    rule = catalog()[rule_id]
    assert rule.passing is not None, f"{rule_id} has no passing example"
    assert rule.failing is not None, f"{rule_id} has no failing example"
    assert set(rule.passing) <= {"top", "children", "target", "saved"} and "top" in rule.passing
    assert set(rule.failing) <= {"top", "children", "target", "saved"} and "top" in rule.failing


@pytest.mark.parametrize("rule_id", RULES)
def test_passing_example_yields_no_hit(rule_id: str) -> None:
    rule = catalog()[rule_id]
    assert _hits(rule, rule.passing) == []


@pytest.mark.parametrize("rule_id", RULES)
def test_failing_example_yields_a_hit(rule_id: str) -> None:
    rule = catalog()[rule_id]
    hits = _hits(rule, rule.failing)
    assert len(hits) >= 1
    assert all(isinstance(m, str) and m for m in hits)


@pytest.mark.parametrize("rule_id", RULES)
def test_rule_has_sources_and_a_doc(rule_id: str) -> None:
    rule = catalog()[rule_id]
    assert rule.sources, f"{rule_id} cites no source"
    assert all(URL.match(s) for s in rule.sources), rule.sources
    assert len(set(rule.sources)) == len(rule.sources)
    assert rule.doc.strip() != rule_id, f"{rule_id} has no docstring"
    summary = rule.summary
    assert 10 <= len(summary) <= 120 and summary.endswith("."), summary
    assert rule.severity in SEVERITIES
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule_id)
    assert rule.fix, f"{rule_id} gives no fix"


@pytest.mark.parametrize("rule_id", RULES)
def test_regex_params_are_safe(rule_id: str) -> None:
    rule = catalog()[rule_id]
    for name, default in rule.params.items():
        if is_pattern_param(name):
            for pattern in default if isinstance(default, list) else [default]:
                assert regex_problem(pattern) is None, (name, pattern)


def test_catalog_is_not_empty() -> None:
    assert len(RULES) >= 10
