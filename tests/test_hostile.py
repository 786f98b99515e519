"""Hostile inputs: each is exit 2 or 3 with one line naming the problem, no traceback, in bounded time and memory.

Local inputs run under a 1 GiB address-space limit (RLIMIT_AS); inputs that need skopeo run without one, since Go
reserves more address space than it uses.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import tarfile
import time
from pathlib import Path

import factory as f
import pytest
from gatecli import GATE, one_line_error, run_gate
from registry import Registry

SECONDS = 20
MEMORY = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def refused(*args: str, code: int, limit_memory: bool = True) -> str:
    """Run the gate; assert the exit code, a single stderr line, no traceback, empty stdout, and the time bound."""
    started = time.monotonic()
    proc = subprocess.run(
        [*GATE, *args],
        capture_output=True,
        text=True,
        timeout=SECONDS * 3,
        preexec_fn=_limit_memory if limit_memory else None,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == code, (proc.returncode, proc.stdout[:500], proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert elapsed < SECONDS, elapsed
    return lines[0]


def descriptor(data: bytes, media_type: str = f.OCI_INDEX) -> dict[str, object]:
    return {"mediaType": media_type, "digest": f.sha256(data), "size": len(data)}


def write_layout(folder: Path, top: bytes, blobs: dict[str, bytes], media_type: str = f.OCI_INDEX) -> Path:
    """An OCI layout whose index.json names `top` under the tag `t` (blobs keyed by digest)."""
    (folder / "blobs" / "sha256").mkdir(parents=True)
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entry = {**descriptor(top, media_type), "annotations": {f.REF_NAME: "t"}}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    for digest, data in {f.sha256(top): top, **blobs}.items():
        (folder / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    return folder


# -- references ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["-rf", "docker://-rf", "docker://--tls-verify=false"])
def test_reference_that_looks_like_a_flag(source: str) -> None:
    line = refused("check", "--", source, code=2)
    assert repr(source) in line or repr(source.removeprefix("docker://")) in line
    assert "starts with '-'" in line or "not an image reference" in line


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:1/a;touch {marker}", "127.0.0.1:1/a$(touch {marker})", "127.0.0.1:1/a`touch {marker}`", "a b"],
)
def test_shell_metacharacters(text: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = "docker://" + text.format(marker=marker)
    line = refused("check", source, code=2)
    assert "spaces, quotes or shell characters" in line
    line = refused("audit", source, code=2)
    assert "spaces, quotes or shell characters" in line
    assert not marker.exists()


def test_control_characters_in_a_list(tmp_path: Path) -> None:
    listing = tmp_path / "refs.txt"
    listing.write_bytes(b"127.0.0.1:1/a\x1b[2J:1\n")
    assert "not an image reference" in refused("audit", "--from-file", str(listing), code=2)


# -- sizes and shapes ---------------------------------------------------------------------------------------------


def test_five_mib_manifest(tmp_path: Path) -> None:
    big = {"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": [], "annotations": {"x": "y" * (5 << 20)}}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big))
    line = refused("check", str(path), code=3)
    assert "over the" in line and "4 MiB is the usual cap" in line
    layout = write_layout(tmp_path / "layout", path.read_bytes(), {})
    assert "over the" in refused("check", f"oci:{layout}:t", code=3)


def entries(count: int) -> list[dict[str, object]]:
    return [{"mediaType": f.OCI_MANIFEST, "digest": f.sha256(str(i).encode()), "size": 100} for i in range(count)]


def test_index_with_100000_entries_is_too_large_to_read(tmp_path: Path) -> None:
    path = tmp_path / "wide.json"
    path.write_text(json.dumps({"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": entries(100_000)}))
    assert "over the" in refused("check", str(path), code=3)


def test_100000_tiny_entries_under_the_size_cap_are_refused(tmp_path: Path) -> None:
    """Refused for every source, saved files included: memory per entry is bounded, the entry count is not."""
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": [{}] * 100_000}))
    line = refused("check", str(path), code=3)
    assert "lists more than 10000 child manifests" in line


def test_10000_entries_are_evaluated(tmp_path: Path) -> None:
    path = tmp_path / "wide.json"
    path.write_text(json.dumps({"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": entries(10_000)}))
    started = time.monotonic()
    proc = subprocess.run(
        [*GATE, "check", str(path), "-f", "json"], capture_output=True, text=True, preexec_fn=_limit_memory, timeout=120
    )
    assert time.monotonic() - started < SECONDS
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout)["targets"][0]["profile"] == "oci"


def test_registry_index_over_the_child_limit_is_refused_before_fetching(registry: Registry) -> None:
    from faultproxy import FaultProxy

    child = f.image(f.Platform("linux", "amd64"))
    wide = f.custom(
        {"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": [child.top.descriptor()] * 10_001},
        f.OCI_INDEX,
        children=[child],
    )
    f.push(registry, "hostile/wide", "1", wide)
    with FaultProxy(registry.url) as proxy:
        line = refused(
            "check",
            f"docker://{proxy.host}/hostile/wide:1",
            "--no-tls-verify",
            "--no-cache",
            code=3,
            limit_memory=False,
        )
        assert "lists more than 10000 child manifests" in line
        assert [p for _, p in proxy.seen if "/manifests/" in p] == ["/v2/hostile/wide/manifests/1"]


def test_index_that_points_at_itself(tmp_path: Path) -> None:
    """Content addressing makes a true cycle impossible: the bytes can never hash to a digest they contain."""
    fake = "sha256:" + "ab" * 32
    top = f.to_json(
        {
            "schemaVersion": 2,
            "mediaType": f.OCI_INDEX,
            "manifests": [{"mediaType": f.OCI_INDEX, "digest": fake, "size": 10}],
        }
    )
    layout = tmp_path / "layout"
    write_layout(layout, top, {})
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {"mediaType": f.OCI_INDEX, "digest": fake, "size": len(top), "annotations": {f.REF_NAME: "t"}}
                ],
            }
        )
    )
    (layout / "blobs" / "sha256" / fake.split(":")[1]).write_bytes(top)
    line = refused("check", f"oci:{layout}:t", code=3)
    assert "does not match its digest" in line


def test_index_nested_50_deep(tmp_path: Path) -> None:
    leaf = f.image(f.Platform("linux", "amd64"))
    blobs = {b.digest: b.data for b in (*leaf.blobs, *leaf.all_manifests)}
    current, media_type = leaf.top.data, f.OCI_MANIFEST
    for _ in range(50):
        current = f.to_json(
            {"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": [descriptor(current, media_type)]}
        )
        blobs[f.sha256(current)] = current
        media_type = f.OCI_INDEX
    layout = write_layout(tmp_path / "layout", current, blobs)
    line = refused("check", f"oci:{layout}:t", code=3)
    assert "nests indexes more than 8 levels deep" in line and "flatten the index" in line


@pytest.mark.parametrize(
    "raw",
    [b"\x00" * 64, b"", b"[" * 100_000, b"\xff" * 64, b"{" * 50_000],
    ids=["nul", "empty", "deep-list", "ff", "deep-obj"],
)
def test_bytes_that_are_not_json(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_bytes(raw)
    assert "not a manifest" in refused("check", str(path), code=2)


def test_utf16_json_is_a_refusal_finding(tmp_path: Path) -> None:
    """JSON that is not UTF-8 parses and fails the check: registries refuse it (exit 1, with the reason)."""
    path = tmp_path / "odd.json"
    path.write_bytes(b"\xff\xfe{\x00}\x00")
    proc = subprocess.run([*GATE, "check", str(path), "-f", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    messages = [x["message"] for x in json.loads(proc.stdout)["targets"][0]["findings"]]
    assert any("UTF-16, not UTF-8; registries refuse it" in m for m in messages), messages


def test_invalid_utf8_inside_a_string_is_read_as_go_reads_it(tmp_path: Path) -> None:
    """Go's encoding/json (the registries') replaces invalid UTF-8 with U+FFFD and accepts the document: so do we."""
    path = tmp_path / "odd.json"
    path.write_bytes(
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [],'
        b' "annotations": {"a": "\xc3\x28\xff"}}'
    )
    proc = subprocess.run([*GATE, "check", str(path), "-f", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["targets"][0]["verdict"] in ("pass", "warn")


# -- policies -----------------------------------------------------------------------------------------------------


def policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_alias_bomb(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    line = refused("check", "x.json", "--policy", policy(tmp_path, "\n".join(lines) + "\n"), code=2)
    assert "p.yaml" in line and "alias" in line.lower()


def test_unknown_rule_id(tmp_path: Path) -> None:
    text = "name: mine\nsummary: s\nkind: registry\nextends: oci\nrules:\n  schemaa:\n    severity: error\n"
    line = refused("check", "x.json", "--policy", policy(tmp_path, text), code=2)
    assert "schemaa" in line and "schema" in line.replace("schemaa", "")


def test_catastrophic_regex_in_a_policy(tmp_path: Path) -> None:
    text = (
        "name: mine\nsummary: s\nkind: registry\nextends: oci\nrules:\n  foreign-layers:\n"
        '    params:\n      allowed_url_pattern: "^(a+)+$"\n'
    )
    line = refused("check", "x.json", "--policy", policy(tmp_path, text), code=2)
    assert "allowed_url_pattern" in line and "nests unbounded quantifiers" in line


# -- layouts and archives that try to leave their folder ----------------------------------------------------------


def test_layout_blob_symlink_out_of_the_folder(tmp_path: Path) -> None:
    tree = f.image(f.Platform("linux", "amd64"))
    layout = f.write_layout(tmp_path / "layout", "t", tree)
    blob = layout / "blobs" / "sha256" / tree.digest.split(":")[1]
    outside = tmp_path / "outside.json"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    line = refused("check", f"oci:{layout}:t", code=3)
    assert "resolves outside the layout" in line


def test_layout_digest_with_dot_dot(tmp_path: Path) -> None:
    tree = f.image(f.Platform("linux", "amd64"))
    layout = f.write_layout(tmp_path / "layout", "t", tree)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (layout / "index.json").write_text(json.dumps(index))
    line = refused("check", f"oci:{layout}:t", code=3)
    assert "index.json: the entry has no valid digest" in line


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "blobs/../../evil"])
def test_tar_member_escaping(tmp_path: Path, name: str) -> None:
    tree = f.image(f.Platform("linux", "amd64"))
    archive = f.write_archive(tmp_path / "good.tar", "t", tree)
    evil = tmp_path / "evil.tar"
    with tarfile.open(archive) as src, tarfile.open(evil, "w") as dst:
        for member in src.getmembers():
            handle = src.extractfile(member) if member.isfile() else None
            dst.addfile(member, handle)
        extra = tarfile.TarInfo(name)
        extra.size = 2
        dst.addfile(extra, io.BytesIO(b"{}"))
    line = refused("check", f"oci-archive:{evil}:t", code=3)
    assert "escapes the layout" in line and repr(name) in line


def test_tar_blob_as_a_symlink(tmp_path: Path) -> None:
    tree = f.image(f.Platform("linux", "amd64"))
    files = f.layout_files("t", tree)
    evil = tmp_path / "evil.tar"
    blob_name = f"blobs/sha256/{tree.digest.split(':')[1]}"
    with tarfile.open(evil, "w") as dst:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if name == blob_name:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                dst.addfile(info)
                continue
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    line = refused("check", f"oci-archive:{evil}:t", code=3)
    assert tree.digest in line and "missing" in line


def test_environment_is_not_needed() -> None:
    """Guard for the helpers above: the memory limit leaves room for a normal run."""
    proc = subprocess.run(
        [*GATE, "--help"], capture_output=True, text=True, preexec_fn=_limit_memory, check=False, env={**os.environ}
    )
    assert proc.returncode == 0, proc.stderr


def test_layout_blob_that_is_a_fifo_or_a_folder_is_refused(tmp_path: Path) -> None:
    """A FIFO would block a plain read forever; a folder would raise IsADirectoryError."""
    import os

    tree = f.index([f.Entry(f.image(f.Platform("linux", "amd64")), f.Platform("linux", "amd64"))])
    for kind in ("fifo", "dir"):
        layout = tmp_path / kind
        f.write_layout(layout, "1", tree)
        child = layout / "blobs" / "sha256" / tree.manifests[0].hex
        child.unlink()
        os.mkfifo(child) if kind == "fifo" else child.mkdir()
        assert "is not a regular file" in one_line_error(run_gate("check", f"oci:{layout}:1", timeout=30), 3)


def test_layout_tag_that_points_at_a_layer_names_the_layout_and_entry(tmp_path: Path) -> None:
    blob = f.layer("x").blob
    tree = f.Tree(blob)
    f.write_layout(tmp_path / "l", "1", tree)
    line = one_line_error(run_gate("check", f"oci:{tmp_path / 'l'}:1", timeout=30), 2)
    assert f"oci:{tmp_path / 'l'}:1: entry {blob.digest} ({blob.media_type}): not a manifest" in line


def test_archive_whose_blob_is_a_hard_link_is_read(tmp_path: Path) -> None:
    """skopeo reads such archives; a hard link to a member outside the archive is simply not found."""
    tree = f.index([f.Entry(f.image(f.Platform("linux", "amd64")), f.Platform("linux", "amd64"))])
    files = f.layout_files("1", tree)
    child = f"blobs/sha256/{tree.manifests[0].hex}"
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        tar.addfile(_member("copy-of-child", len(files[child])), io.BytesIO(files[child]))
        for name, data in files.items():
            if name == child:
                link = tarfile.TarInfo(name)
                link.type, link.linkname = tarfile.LNKTYPE, "copy-of-child"
                tar.addfile(link)
            else:
                tar.addfile(_member(name, len(data)), io.BytesIO(data))
    proc = run_gate("check", f"oci-archive:{tmp_path / 'a.tar'}:1", "-f", "json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digest"] == tree.digest


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info
