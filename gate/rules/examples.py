"""Turn a rule's example (`{"top": ..., "children": {...}}`) into real bytes with real digests.

An example may also name a "target" reference, for the rules about the target itself.
In an example, a string "@name" stands for the child called `name`: as a `size` it becomes the child's length,
anywhere else its digest. A string "%text" stands the same way for a blob whose content is `text` (configs,
layers), so that an example can be pushed to a real registry with every blob it names.
The same bytes serve `registry-gate explain`, the doc tests and the ground-truth tests
that push examples to a real registry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gate import manifest as mf
from gate.reference import parse as parse_reference
from gate.rules import Context
from gate.sources import resolve


def encode(doc: Any) -> bytes:
    return json.dumps(doc, indent=2).encode() + b"\n"


def materialize(example: Mapping[str, Any]) -> tuple[bytes, dict[str, bytes], dict[str, bytes]]:
    """The top's bytes, every child manifest's bytes by digest, and every "%text" blob by digest."""
    children: Mapping[str, Any] = example.get("children", {})
    raws: dict[str, bytes] = {}
    blobs: dict[str, bytes] = {}

    def raw(name: str, stack: tuple[str, ...] = ()) -> bytes:
        if name not in raws:
            if name in stack:
                raise ValueError(f"example child {name!r} refers to itself")
            raws[name] = encode(substitute(children[name], (*stack, name)))
        return raws[name]

    def substitute(value: Any, stack: tuple[str, ...], key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: substitute(v, stack, k) for k, v in value.items()}
        if isinstance(value, list):
            return [substitute(v, stack, key) for v in value]
        if isinstance(value, str) and value.startswith("@") and value[1:] in children:
            data = raw(value[1:], stack)
            return len(data) if key == "size" else mf.digest_of(data)
        if isinstance(value, str) and value.startswith("%"):
            data = value[1:].encode()
            blobs[mf.digest_of(data)] = data
            return len(data) if key == "size" else mf.digest_of(data)
        return value

    top = encode(substitute(example["top"], ()))
    return top, {mf.digest_of(r): r for r in raws.values()}, blobs


def image(example: Mapping[str, Any]) -> mf.Image:
    """The example as a source resolves it; `"saved": true` makes it a saved manifest checked without children."""
    top, manifests, _ = materialize(example)
    if example.get("saved"):
        return resolve("example", mf.parse(top), None)
    return resolve("example", mf.parse(top), lambda d: manifests.get(d.digest or ""))


def context(example: Mapping[str, Any]) -> Context:
    """What a rule sees for the example: its image, and its "target" reference when it names one (rules about
    the target reference itself, such as tag-format, need one)."""
    target = example.get("target")
    return Context(image(example), parse_reference(target) if isinstance(target, str) else None)
