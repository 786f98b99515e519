"""The wheel carries the built-in policies, and `python -m gate` / the console script both work."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_with_its_policies(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("registry_gate-*.whl"))
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Install the wheel alone (no network), and borrow only its dependencies from the test environment's
    # site-packages through a .pth line, which does not run that environment's editable-install hook.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        timeout=120,
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [str(python), "-c", "import gate.policy as p; print(p.builtin_dir())"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(where) == site / "gate" / "policies"
    names = {p.stem for p in Path(where).glob("*.yaml")}
    assert names == {p.stem for p in (ROOT / "policies").glob("*.yaml")}
    assert {"oci", "quay", "dockerhub", "distribution"} <= names
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            {"schemaVersion": 1, "name": "a/b", "tag": "1", "architecture": "amd64", "fsLayers": [], "history": []}
        )
    )
    proc = subprocess.run(
        [
            str(fresh / "bin" / "python"),
            "-m",
            "gate",
            "check",
            str(manifest),
            "--target",
            "quay.io/a/b:1",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["targets"][0]["profile"] == "quay"
