"""The digest-addressed cache: bytes by digest, verified on read, never a tag; real registry behind a counting proxy."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import factory as f
import pytest
from faultproxy import FaultProxy
from gatecli import run_gate
from registry import Registry

from gate.cache import Cache
from gate.skopeo import Skopeo


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_get_verifies(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    data = b'{"schemaVersion": 2}'
    cache.put(digest(data), data)
    assert Cache(tmp_path).get(digest(data)) == data  # from disk, in a new process' cache


def test_bytes_that_do_not_hash_to_the_digest_are_not_stored(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put(digest(b"one"), b"two")
    assert cache.get(digest(b"one")) is None
    assert not (tmp_path / "manifests").exists()


def test_a_corrupted_entry_is_dropped_on_read(tmp_path: Path) -> None:
    data = b'{"a": 1}'
    Cache(tmp_path).put(digest(data), data)
    entry = tmp_path / "manifests" / "sha256" / digest(data).split(":")[1]
    entry.write_bytes(b'{"a": 2}')
    assert Cache(tmp_path).get(digest(data)) is None
    assert not entry.exists()


def test_odd_digests_never_become_paths(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64):
        cache.put(bad, b"x")
        assert cache.get(bad) is None
    assert not (tmp_path / "manifests").exists()


def test_an_unwritable_cache_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = Cache(blocker / "registry-gate")
    data = b"{}"
    cache.put(digest(data), data)  # no exception
    assert Cache(blocker / "registry-gate").get(digest(data)) is None


def test_no_disk_keeps_bytes_for_one_run_only(tmp_path: Path) -> None:
    cache = Cache(tmp_path, disk=False)
    data = b"{}"
    cache.put(digest(data), data)
    assert cache.get(digest(data)) == data
    assert not any(tmp_path.iterdir())


def test_default_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gate.cache import default_root

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_root() == tmp_path / "registry-gate"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".cache" / "registry-gate"


def test_skopeo_version_is_cached_per_binary(tmp_path: Path) -> None:
    """A stand-in binary, since the real skopeo's version cannot be changed here."""
    binary = tmp_path / "skopeo"
    binary.write_text("#!/bin/sh\necho 'skopeo version 9.8.7'\n")
    binary.chmod(0o755)
    calls: list[list[str]] = []

    def runner(argv: object, timeout: float) -> subprocess.CompletedProcess[bytes]:
        calls.append(list(argv))  # type: ignore[call-overload]
        return subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False)  # type: ignore[call-overload]

    cache = Cache(tmp_path / "cache")
    assert Skopeo(binary=str(binary), runner=runner).version(cache) == "9.8.7"
    assert Skopeo(binary=str(binary), runner=runner).version(cache) == "9.8.7"
    assert len(calls) == 1
    binary.write_text("#!/bin/sh\necho 'skopeo version 10.0.1'\n")  # an upgrade: new size and mtime
    assert Skopeo(binary=str(binary), runner=runner).version(cache) == "10.0.1"
    assert len(calls) == 2


# -- end to end -----------------------------------------------------------------------------------------------


@pytest.fixture
def counted(registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.url) as proxy:
        yield proxy


def gate(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, env=dict(os.environ, XDG_CACHE_HOME=str(cache)))


def manifest_requests(proxy: FaultProxy) -> list[str]:
    return [path for method, path in proxy.seen if "/manifests/" in path]


def test_warm_check_of_a_pinned_reference_makes_no_request(
    registry: Registry, counted: FaultProxy, tmp_path: Path
) -> None:
    tree = f.index([f.image(f.Platform("linux", a)) for a in ("amd64", "arm64", "s390x")])
    f.push(registry, "cache/pinned", "1", tree)
    pinned = f"docker://{counted.host}/cache/pinned@{tree.digest}"
    cold = gate("check", pinned, "--no-tls-verify", "-f", "json", cache=tmp_path)
    assert cold.returncode == 0, cold.stderr
    assert len(manifest_requests(counted)) == 4
    counted.clear()
    warm = gate("check", pinned, "--no-tls-verify", "-f", "json", cache=tmp_path)
    assert warm.returncode == 0, warm.stderr
    assert counted.seen == []  # no skopeo call reached the registry, not even /v2/
    assert json.loads(warm.stdout) == json.loads(cold.stdout)


def test_a_tag_is_always_fetched_and_children_never_twice(
    registry: Registry, counted: FaultProxy, tmp_path: Path
) -> None:
    first = f.index([f.image(f.Platform("linux", "amd64")), f.image(f.Platform("linux", "arm64"))])
    f.push(registry, "cache/tagged", "1", first)
    ref = f"docker://{counted.host}/cache/tagged:1"
    assert gate("check", ref, "--no-tls-verify", cache=tmp_path).returncode == 0
    counted.clear()
    assert gate("check", ref, "--no-tls-verify", cache=tmp_path).returncode == 0
    assert manifest_requests(counted) == ["/v2/cache/tagged/manifests/1"]  # the tag, not the children
    # the tag moves: the new digest is seen (no tag -> digest mapping is kept)
    second = f.index([f.image(f.Platform("linux", "riscv64"))])
    f.push(registry, "cache/tagged", "1", second)
    proc = gate("check", ref, "--no-tls-verify", "-f", "json", cache=tmp_path)
    assert json.loads(proc.stdout)["digest"] == second.digest


def test_no_cache_fetches_everything_and_writes_nothing(
    registry: Registry, counted: FaultProxy, tmp_path: Path
) -> None:
    tree = f.index([f.image(f.Platform("linux", "amd64")), f.image(f.Platform("linux", "arm64"))])
    f.push(registry, "cache/nocache", "1", tree)
    pinned = f"docker://{counted.host}/cache/nocache@{tree.digest}"
    for _ in range(2):
        assert gate("check", pinned, "--no-tls-verify", "--no-cache", cache=tmp_path).returncode == 0
    assert len(manifest_requests(counted)) == 6
    assert not (tmp_path / "registry-gate" / "manifests").exists()


def test_a_tampered_cache_entry_is_fetched_again(registry: Registry, counted: FaultProxy, tmp_path: Path) -> None:
    tree = f.index([f.image(f.Platform("linux", "amd64"))])
    f.push(registry, "cache/tampered", "1", tree)
    pinned = f"docker://{counted.host}/cache/tampered@{tree.digest}"
    assert gate("check", pinned, "--no-tls-verify", cache=tmp_path).returncode == 0
    entry = tmp_path / "registry-gate" / "manifests" / "sha256" / tree.digest.split(":")[1]
    entry.write_bytes(b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}')
    counted.clear()
    proc = gate("check", pinned, "--no-tls-verify", "-f", "json", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digest"] == tree.digest
    assert manifest_requests(counted) == [f"/v2/cache/tampered/manifests/{tree.digest}"]


def test_a_tag_check_warms_the_pinned_reference(registry: Registry, counted: FaultProxy, tmp_path: Path) -> None:
    """Bytes fetched by tag are kept under their own digest (a content fact), never as the tag's answer."""
    tree = f.index([f.image(f.Platform("linux", "amd64")), f.image(f.Platform("linux", "arm64"))])
    f.push(registry, "cache/warmed", "1", tree)
    assert gate("check", f"docker://{counted.host}/cache/warmed:1", "--no-tls-verify", cache=tmp_path).returncode == 0
    counted.clear()
    pinned = f"docker://{counted.host}/cache/warmed@{tree.digest}"
    assert gate("check", pinned, "--no-tls-verify", cache=tmp_path).returncode == 0
    assert counted.seen == []
