"""`registry-gate audit`: many sources, tag expansion, shards, one `registry-gate/audit/v1` report, worst exit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import factory as f
import pytest
from gatecli import GATE, run_gate
from registry import Registry

from gate.audit import in_shard, parse_shard, read_list
from gate.errors import UsageError

FAILING = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'
    b'"manifests":[{"digest":"sha256:' + b"a" * 64 + b'"}]}'
)


def gate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, stdin=stdin, timeout=180)


def audit_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data["schema"] == "registry-gate/audit/v1"
    for report in data["reports"]:
        assert report["schema"] == "registry-gate/report/v1"
        assert {"source", "digest", "mediaType", "notices", "targets"} <= set(report)
    assert data["exit_code"] == proc.returncode
    return data


@pytest.fixture(scope="module")
def tagged(registry: Registry) -> str:
    """A repository with tags 1.0, 1.1, 2.0 (2.0 and 1.1 are the same index)."""
    one = f.index([f.image(f.Platform("linux", "amd64"))])
    two = f.index([f.image(f.Platform("linux", "arm64"))])
    f.push(registry, "bulk/app", "1.0", one)
    f.push(registry, "bulk/app", "1.1", two)
    f.push(registry, "bulk/app", "2.0", two)
    return f"{registry.host}/bulk/app"


def test_read_list_skips_comments_and_blanks(tmp_path: Path) -> None:
    listing = tmp_path / "refs.txt"
    listing.write_text("# header\n\nhost/a:1  # trailing\n  host/b@sha256:" + "0" * 64 + "\nhost/c#1\n")
    assert read_list(str(listing)) == ["host/a:1", "host/b@sha256:" + "0" * 64, "host/c#1"]


def test_shards_cover_every_source_exactly_once() -> None:
    sources = [f"registry.example/team/app{i}:{j}" for i in range(50) for j in range(4)]
    for n in (1, 2, 3, 7):
        shards = [[s for s in sources if in_shard(s, (k, n))] for k in range(1, n + 1)]
        assert sorted(s for shard in shards for s in shard) == sorted(sources)
        assert sum(len(shard) for shard in shards) == len(sources)
        reordered = [[s for s in reversed(sources) if in_shard(s, (k, n))] for k in range(1, n + 1)]
        assert [set(s) for s in reordered] == [set(s) for s in shards]  # not by position
    assert all(len([s for s in sources if in_shard(s, (k, 4))]) > 20 for k in range(1, 5))  # spread


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shard(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_shard(bad)


def test_audit_expands_tags_with_a_filter(tagged: str) -> None:
    proc = gate("audit", tagged, "--tags", r"^1\.", "--no-tls-verify", "-f", "json")
    data = audit_json(proc)
    assert proc.returncode == 0, proc.stderr
    assert [r["source"] for r in data["reports"]] == [f"docker://{tagged}:1.0", f"docker://{tagged}:1.1"]
    totals = data["totals"]
    assert (totals["sources"], totals["pass"] + totals["warn"], totals["fail"], totals["error"]) == (2, 2, 0, 0)
    assert data["errors"] == []
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


def test_exit_code_is_the_worst(tagged: str, tmp_path: Path) -> None:
    failing = tmp_path / "failing.json"
    failing.write_bytes(FAILING)
    listing = tmp_path / "refs.txt"
    listing.write_text(f"# the list\ndocker://{tagged}:1.0\n{failing}\n")
    proc = gate("audit", "--from-file", str(listing), "--no-tls-verify", "-f", "json")
    data = audit_json(proc)
    assert proc.returncode == 1
    totals = data["totals"]
    assert (totals["sources"], totals["pass"] + totals["warn"], totals["fail"], totals["error"]) == (2, 1, 1, 0)
    # a source that cannot be inspected outranks a policy failure, and does not hide the others
    proc = gate("audit", "--from-file", str(listing), f"{tagged}:9.9", "--no-tls-verify", "-f", "json")
    data = audit_json(proc)
    assert proc.returncode == 3
    assert [e["source"] for e in data["errors"]] == [f"docker://{tagged}:9.9"]
    assert data["errors"][0]["kind"] == "not-found" and data["errors"][0]["exit_code"] == 3
    assert len(data["reports"]) == 2


def test_text_report_ends_with_totals(tagged: str) -> None:
    proc = gate("audit", tagged, "--no-tls-verify")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.rstrip().splitlines()[-1]
    assert last.startswith("audit   3 sources: ") and last.endswith(" warn, 0 fail, 0 error; exit 0"), last
    assert proc.stdout.count("source  docker://") == 3


def test_shards_split_an_audit(tagged: str) -> None:
    seen = []
    for k in (1, 2):
        data = audit_json(gate("audit", tagged, "--shard", f"{k}/2", "--no-tls-verify", "-f", "json"))
        assert data["shard"] == f"{k}/2"
        seen += [r["source"] for r in data["reports"]]
    assert sorted(seen) == [f"docker://{tagged}:{t}" for t in ("1.0", "1.1", "2.0")]


def test_from_stdin(tagged: str) -> None:
    proc = gate("audit", "--from-file", "-", "--no-tls-verify", "-f", "json", stdin=f"{tagged}:2.0\n")
    totals = audit_json(proc)["totals"]
    assert totals["sources"] == 1 and totals["pass"] + totals["warn"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no sources"),
        (("x.example/a:1", "--shard", "3/2"), "--shard '3/2' is not K/N"),
        (("x.example/a:1", "--tags", "v1"), "--tags was given but no source is a bare repository"),
        (("x.example/a", "--tags", "(["), "is not a regular expression"),
        (("--from-file", "/nonexistent/list"), "--from-file /nonexistent/list: cannot read it"),
    ],
)
def test_usage_errors(args: tuple[str, ...], message: str) -> None:
    proc = gate("audit", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_progress_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    import os
    import pty

    saved = tmp_path / "failing.json"
    saved.write_bytes(FAILING)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [*GATE, "audit", str(saved), str(saved), "-f", "json"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 1
    assert b"[1/1] " + str(saved).encode() in drawn  # the list is deduplicated: one source
    assert json.loads(proc.stdout)["totals"]["sources"] == 1  # stdout stays clean JSON


def test_fixes_for_an_untagged_target_keep_each_source_s_tag(registry: Registry) -> None:
    """Audit fixes for `-t quay.io/acme/python` copy each tag to its own tag, not every one onto `latest`."""
    tree = f.python_like()
    for tag in ("3.12", "3.13"):
        f.push(registry, "bulk/python", tag, tree)
    proc = gate("audit", f"{registry.host}/bulk/python", "--no-tls-verify", "-t", "quay.io/acme/python", "-f", "json")
    assert proc.returncode == 1, proc.stderr
    fixes = {
        report["source"]: {x["fix"] for x in report["targets"][0]["findings"] if x["rule"] == "mixed-oci-index"}
        for report in audit_json(proc)["reports"]
    }
    assert fixes == {
        f"docker://{registry.host}/bulk/python:{tag}": {
            f"skopeo copy --src-tls-verify=false --all --format oci docker://{registry.host}/bulk/python:{tag} "
            f"docker://quay.io/acme/python:{tag}"
        }
        for tag in ("3.12", "3.13")
    }
