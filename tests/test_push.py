"""`registry-gate push`: real skopeo copies between real registries (issue #4, item 5)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import factory as f
import pytest
from gatecli import run_gate, user_env
from registry import Registry, skopeo

from gate import manifest as mf
from gate.rules import catalog


def gate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, cwd=cwd, env=user_env(cwd), timeout=300)


def raw(registry: Registry, ref: str) -> dict[str, object]:
    proc = skopeo("inspect", "--raw", *registry.skopeo_tls_args(), f"docker://{registry.host}/{ref}")
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def exists(registry: Registry, ref: str) -> bool:
    proc = skopeo("inspect", "--raw", *registry.skopeo_tls_args(), f"docker://{registry.host}/{ref}", check=False)
    return proc.returncode == 0


@pytest.fixture
def mixed(registry: Registry, new_repo) -> str:  # type: ignore[no-untyped-def]
    repo = new_repo("mixed")
    f.push(registry, repo, "3.12", f.python_like())
    return f"{registry.host}/{repo}:3.12"


def test_refused_push_copies_nothing_and_exits_1(registry: Registry, mixed: str, new_repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dest = new_repo("dest")
    proc = gate(
        "push",
        f"docker://{mixed}",
        f"{registry.host}/{dest}:3.12",
        "--profile",
        "quay",
        "--no-tls-verify",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "mixed-oci-index" in proc.stdout
    assert "push: refused: 2 failing finding(s)" in proc.stdout
    assert "pass --fix" in proc.stdout
    assert not exists(registry, f"{dest}:3.12")


def test_fix_converts_to_oci_and_the_destination_passes(
    registry: Registry,
    mixed: str,
    new_repo,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    dest = new_repo("dest")
    proc = gate(
        "push",
        f"docker://{mixed}",
        f"{registry.host}/{dest}:3.12",
        "--profile",
        "quay",
        "--fix",
        "--no-tls-verify",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--format oci" in proc.stdout and "--preserve-digests" not in proc.stdout
    assert f"push: {registry.host}/{dest}:3.12 passes after conversion (pass)" in proc.stdout
    top = raw(registry, f"{dest}:3.12")
    assert top["mediaType"] == mf.OCI_INDEX
    entries = top["manifests"]
    assert isinstance(entries, list) and len(entries) == 6
    assert {e["mediaType"] for e in entries} == {mf.OCI_MANIFEST}
    windows = [e for e in entries if e["platform"]["os"] == "windows"]
    child = raw(registry, f"{dest}@{windows[0]['digest']}")
    assert child["mediaType"] == mf.OCI_MANIFEST
    # The re-check it printed, run as printed, agrees.
    printed = [line for line in proc.stdout.splitlines() if line.startswith("push: checking what landed: ")]
    argv = shlex.split(printed[0].split(": ", 2)[2])
    assert argv[:2] == ["registry-gate", "check"] and "--no-tls-verify" in argv
    again = gate(*argv[1:], "--format", "json", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["targets"][0]["verdict"] == "pass"


def test_dry_run_prints_the_exact_command_and_copies_nothing(
    registry: Registry,
    mixed: str,
    new_repo,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    dest = new_repo("dest")
    proc = gate(
        "push",
        f"docker://{mixed}",
        f"docker://{registry.host}/{dest}:3.12",
        "--profile",
        "quay",
        "--fix",
        "--dry-run",
        "--no-tls-verify",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = (
        f"push: would run: skopeo copy --all --format oci --src-tls-verify=false --dest-tls-verify=false "
        f"docker://{mixed} docker://{registry.host}/{dest}:3.12"
    )
    assert expected in proc.stdout.splitlines()
    recheck = (
        f"push: then check what landed: registry-gate check docker://{registry.host}/{dest}:3.12 --no-tls-verify "
        f"--target {registry.host}/{dest}:3.12=quay"
    )
    assert recheck in proc.stdout.splitlines()
    assert not exists(registry, f"{dest}:3.12")


def test_passing_image_is_copied_unchanged(registry: Registry, new_repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src, dest = new_repo("src"), new_repo("dest")
    tree = f.index([f.image(f.Platform("linux", "amd64"))])
    digest = f.push(registry, src, "1", tree)
    proc = gate(
        "push",
        f"docker://{registry.host}/{src}:1",
        f"{registry.host}/{dest}:1",
        "--profile",
        "quay",
        "--no-tls-verify",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "push: copied to" in proc.stdout and "--format oci" not in proc.stdout
    copied = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{dest}:1").stdout
    assert f.sha256(copied) == digest


def test_fix_refuses_when_conversion_cannot_fix_it(registry: Registry, new_repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dest = new_repo("dest")
    layout = f.write_layout(tmp_path / "layout", "1", f.index([]))
    proc = gate(
        "push",
        f"oci:{layout}:1",
        f"{registry.host}/{dest}:1",
        "--profile",
        "quay",
        "--fix",
        "--fail-on",
        "warning",
        "--no-tls-verify",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "conversion does not fix empty-index" in proc.stdout
    assert not exists(registry, f"{dest}:1")


def test_saved_manifest_cannot_be_pushed(tmp_path: Path) -> None:
    saved = tmp_path / "m.json"
    saved.write_bytes(f.image(f.Platform("linux", "amd64")).top.data)
    proc = gate("push", str(saved), "127.0.0.1:1/x:1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("registry-gate: error: push cannot copy from")
    assert "Traceback" not in proc.stderr


def test_fixable_by_conversion_follows_the_fix_template() -> None:
    rules = catalog()
    assert rules["mixed-oci-index"].fixable_by_conversion
    assert rules["mixed-docker-list"].fixable_by_conversion
    assert not rules["docker-v2s2-undefined-types"].fixable_by_conversion  # skopeo cannot read such a manifest
    assert not rules["empty-index"].fixable_by_conversion
    assert not rules["schema1"].fixable_by_conversion  # its fix is --format v2s2
