"""The rule catalog.

A rule is a function over a resolved manifest tree that yields `Hit`s, registered with `@rule(...)` in one module
per family. The registration carries what a user needs to trust it: a stable id, a default severity, its
parameters, a doc (first line = summary), a passing and a failing example, the fix command and the public sources.
Which rules run on a target, and at what severity, is the policy's business (gate/policy.py), not the rule's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gate import manifest as mf
from gate.reference import Reference

SEVERITIES = ("error", "warning", "info")
FAMILIES = ("structure", "mediatypes", "attestations", "platforms", "layers", "reference")


@dataclass(frozen=True)
class Hit:
    node: mf.Node
    path: str
    """The field inside the node's document ("" for the entry itself)."""
    message: str
    entry: mf.Descriptor | None = None
    """The index entry the finding is about, when it is about one (its digest and platform are reported)."""


@dataclass
class Context:
    image: mf.Image
    target: Reference | None = None

    def manifests(self) -> Iterator[tuple[mf.Node, mf.Manifest]]:
        return self.image.manifests()

    def indexes(self) -> Iterator[tuple[mf.Node, mf.Manifest]]:
        return ((n, m) for n, m in self.image.manifests() if m.kind == "index")

    def images(self) -> Iterator[tuple[mf.Node, mf.Manifest]]:
        return ((n, m) for n, m in self.image.manifests() if m.kind == "image")


Check = Callable[[Context, Mapping[str, Any]], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    family: str
    severity: str
    doc: str
    check: Check
    params: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    fix: str | None = None
    """A command with `{source}` and `{target}` placeholders, or advice."""
    passing: Mapping[str, Any] | None = None
    failing: Mapping[str, Any] | None = None
    """Examples: {"top": {...}, "children": {"name": {...}}}; a descriptor digest "@name" points at a child."""
    needs_children: bool = False

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0]

    @property
    def fixable_by_conversion(self) -> bool:
        """The fix is the conversion `skopeo copy ... --format oci` (what `registry-gate push --fix` does)."""
        return bool(self.fix) and str(self.fix).startswith("skopeo copy ") and "--format oci" in str(self.fix)


_REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    *,
    severity: str,
    sources: Iterable[str],
    params: Mapping[str, Any] | None = None,
    fix: str | None = None,
    passing: Mapping[str, Any] | None = None,
    failing: Mapping[str, Any] | None = None,
    needs_children: bool = False,
) -> Callable[[Check], Check]:
    """Register a check function as rule `id`; its docstring is the rule's doc."""
    assert severity in SEVERITIES, severity

    def register(check: Check) -> Check:
        assert id not in _REGISTRY, f"duplicate rule id {id}"
        family = check.__module__.rsplit(".", 1)[-1]
        _REGISTRY[id] = Rule(
            id=id,
            family=family,
            severity=severity,
            doc=(check.__doc__ or id).strip(),
            check=check,
            params=dict(params or {}),
            sources=tuple(sources),
            fix=fix,
            passing=passing,
            failing=failing,
            needs_children=needs_children,
        )
        return check

    return register


def catalog() -> dict[str, Rule]:
    """Every rule, by id (the family modules are imported on first use)."""
    if not _REGISTRY:
        for family in FAMILIES:
            importlib.import_module(f"gate.rules.{family}")
    return _REGISTRY


def entries(ctx: Context) -> Iterator[tuple[mf.Node, mf.Manifest, mf.Node]]:
    """(index node, index manifest, child node) for every entry of every index in the tree."""
    for node, index in ctx.indexes():
        for child in node.children:
            yield node, index, child
