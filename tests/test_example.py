"""The committed examples/python-3.12 layout is exactly what examples/make_example.py produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "examples" / "python-3.12"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_make_example_regenerates_committed_layout_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "python-3.12"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_example.py"), str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    fresh, committed = _files(out), _files(COMMITTED)
    assert sorted(fresh) == sorted(committed)
    assert [name for name in fresh if fresh[name] != committed[name]] == []
    assert len(fresh) == 2 + 23  # oci-layout, index.json; 7 manifests + 6 configs + 10 layers
    assert "sha256:" in proc.stdout
