#!/usr/bin/env python3
"""Regenerate the bundled example: a python:3.12-shaped *mixed* OCI index as an OCI layout.

    python3 examples/make_example.py [OUT_DIR]     (default: examples/python-3.12, tag 3.12)

Output is byte-for-byte deterministic; tests/test_example.py checks the committed copy.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import factory  # noqa: E402

TAG = "3.12"
DEFAULT_OUT = HERE / "python-3.12"


def build(out: Path) -> str:
    """Write the layout to `out` (replacing it) and return the top digest."""
    tree = factory.python_like()
    if out.exists():
        shutil.rmtree(out)
    factory.write_layout(out, TAG, tree)
    return tree.digest


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    digest = build(out)
    print(f"{out}: oci:{out}:{TAG} -> {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
