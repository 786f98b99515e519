"""End to end: the real CLI, the real skopeo, a real registry (issue: walking skeleton)."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import factory as f
import gatecli
import pytest
from gatecli import run_gate
from registry import Registry, skopeo

from gate.engine import evaluate, fix_command, target_from_option
from gate.policy import Registry as Policies
from gate.sources import open_source


def gate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_gate(*args, timeout=timeout)


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data["schema"] == "registry-gate/report/v1"
    return data


def by_target(data: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {t["target"]: t for t in data["targets"]}


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    line = gatecli.one_line_error(proc, code)
    assert proc.stdout == ""
    return line


@pytest.fixture(scope="module")
def python_312(registry: Registry) -> tuple[str, f.Tree]:
    tree = f.python_like()
    f.push(registry, "library/python", "3.12", tree)
    return f"{registry.host}/library/python:3.12", tree


def test_mixed_index_fails_quay_and_passes_docker_hub(python_312: tuple[str, f.Tree]) -> None:
    ref, tree = python_312
    proc = gate(
        "check",
        f"docker://{ref}",
        "--no-tls-verify",
        "--target",
        "quay.io/acme/python:3.12",
        "--target",
        "docker.io/acme/python:3.12",
        "--format",
        "json",
    )
    assert proc.returncode == 1, proc.stderr
    data = report(proc)
    assert data["digest"] == tree.digest
    assert data["mediaType"] == f.OCI_INDEX
    targets = by_target(data)
    quay, hub = targets["quay.io/acme/python:3.12"], targets["docker.io/acme/python:3.12"]
    assert (quay["profile"], quay["verdict"], quay["chosen_by"]) == ("quay", "fail", "host quay.io")
    assert (hub["profile"], hub["verdict"]) == ("dockerhub", "pass")
    errors = [x for x in quay["findings"] if x["severity"] == "error"]
    windows = [e for e in tree.json()["manifests"] if e["platform"]["os"] == "windows"]
    assert {x["rule"] for x in errors} == {"mixed-oci-index"}
    assert sorted(x["digest"] for x in errors) == sorted(e["digest"] for e in windows)
    assert {x["platform"] for x in errors} == {f"windows/amd64 ({e['platform']['os.version']})" for e in windows}
    assert {x["path"] for x in errors} == {"manifests[4].mediaType", "manifests[5].mediaType"}
    assert all("https://github.com/quay/quay/pull/6070" in x["sources"] for x in errors)
    assert errors[0]["fix"] == (
        f"skopeo copy --src-tls-verify=false --all --format oci docker://{ref} docker://quay.io/acme/python:3.12"
    )
    assert not [x for x in hub["findings"] if x["severity"] in ("error", "warning")]


def test_the_printed_fix_converts_and_the_recheck_passes(python_312: tuple[str, f.Tree], registry: Registry) -> None:
    ref, _ = python_312
    dest = f"{registry.host}/library/python-fixed:3.12"
    data = report(gate("check", f"docker://{ref}", "--no-tls-verify", "--target", f"{dest}=quay", "--format", "json"))
    fix = {x["fix"] for x in data["targets"][0]["findings"] if x["rule"] == "mixed-oci-index"}
    assert fix == {f"skopeo copy --src-tls-verify=false --all --format oci docker://{ref} docker://{dest}"}
    argv = shlex.split(fix.pop())
    assert argv[:2] == ["skopeo", "copy"]
    # the source's flag comes printed; the destination is the user's to vouch for
    skopeo(*argv[1:2], "--insecure-policy", "--dest-tls-verify=false", *argv[2:])
    after = gate(
        "check", f"docker://{dest}", "--no-tls-verify", "--target", "quay.io/acme/python:3.12", "--format", "json"
    )
    assert after.returncode == 0, after.stdout + after.stderr
    quay = report(after)["targets"][0]
    assert quay["verdict"] == "pass"
    assert "mixed-oci-index" not in {x["rule"] for x in quay["findings"]}


def test_version_aware_quay(python_312: tuple[str, f.Tree]) -> None:
    ref, _ = python_312
    proc = gate(
        "check",
        f"docker://{ref}",
        "--no-tls-verify",
        "--format",
        "json",
        "--target",
        "q.example/a/b:1=quay@3.17.3",
        "--target",
        "q.example/a/c:1=quay@3.17.4",
        "--profile",
        "quay@3.18",
    )
    verdicts = {(t["target"], t["profile"]): t["verdict"] for t in report(proc)["targets"]}
    assert verdicts == {
        ("q.example/a/b:1", "quay@3.17.3"): "fail",
        ("q.example/a/c:1", "quay@3.17.4"): "pass",
        (None, "quay@3.18"): "pass",
    }
    assert proc.returncode == 1


def test_unknown_host_gets_the_baseline_and_a_notice(python_312: tuple[str, f.Tree]) -> None:
    ref, _ = python_312
    data = report(
        gate(
            "check", f"docker://{ref}", "--no-tls-verify", "--target", "registry.corp.example/a/b:1", "--format", "json"
        )
    )
    t = data["targets"][0]
    assert (t["profile"], t["chosen_by"], t["verdict"]) == ("oci", "default", "pass")
    assert any("--target registry.corp.example/a/b:1=PROFILE" in n for n in t["notices"])


def test_text_output_names_rule_entry_fix_and_source(python_312: tuple[str, f.Tree]) -> None:
    ref, _ = python_312
    proc = gate("check", f"docker://{ref}", "--no-tls-verify", "--target", "quay.io/acme/python:3.12")
    assert proc.returncode == 1
    out = proc.stdout
    assert "FAIL  quay.io/acme/python:3.12  [quay, host quay.io]" in out
    assert "mixed-oci-index" in out and "windows/amd64 (10.0.20348.2966)" in out
    assert (
        f"fix: skopeo copy --src-tls-verify=false --all --format oci docker://{ref} docker://quay.io/acme/python:3.12"
        in out
    )
    assert "see: https://github.com/quay/quay/blob/v3.17.4/image/oci/index.py" in out
    assert "\033[" not in out  # not a TTY: no colour


def test_children_are_verified_against_their_digests(registry: Registry, repo: str) -> None:
    """A registry serving other bytes for a child digest can only be simulated: the registry here verifies digests
    on push, so the child is served by a stub skopeo that answers with the wrong bytes (said here, as required)."""
    from gate.errors import InspectError
    from gate.skopeo import Options, Skopeo
    from gate.sources import open_source

    tree = f.index([f.image(f.Platform("linux", "amd64"))])
    top = tree.top.data

    def runner(argv: Any, timeout: float) -> subprocess.CompletedProcess[bytes]:
        body = top if argv[-1].endswith(":1") else b'{"schemaVersion": 2, "tampered": true}'
        return subprocess.CompletedProcess(argv, 0, body, b"")

    with pytest.raises(InspectError) as exc:
        open_source(f"docker://{registry.host}/{repo}:1", Skopeo(Options(), runner=runner))
    assert exc.value.kind == "digest"
    assert "do not hash to" in str(exc.value)


def test_registry_down_is_exit_3_with_one_line() -> None:
    from registry import free_port

    line = one_line_error(
        gate("check", f"docker://127.0.0.1:{free_port()}/a/b:1", "--no-tls-verify", "--timeout", "10"), 3
    )
    assert "network" in line and "connection refused" in line
    assert "reachable" in line


def test_missing_tag_is_exit_3_with_one_line(registry: Registry) -> None:
    line = one_line_error(gate("check", f"docker://{registry.host}/nothing/here:nope", "--no-tls-verify"), 3)
    assert "not-found" in line and "manifest unknown" in line
    assert "skopeo list-tags" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--authfile=/etc/passwd"],
        ["check", "--", "--authfile=/etc/passwd"],
        ["check", "--", "-x"],
        ["check", "docker://--authfile=/etc/passwd"],
        ["check", "docker://a/b:1;rm -rf /"],
    ],
)
def test_sources_that_look_like_flags_or_shell_are_usage_errors(argv: list[str]) -> None:
    proc = gate(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_flag_like_source_names_the_problem() -> None:
    line = one_line_error(gate("check", "--", "--authfile=/etc/passwd"), 2)
    assert "starts with '-'" in line


def test_auth_registry_needs_credentials(auth_registry: Registry, repo: str, tmp_path: Path) -> None:
    tree = f.image(f.Platform("linux", "amd64"))
    f.push(auth_registry, repo, "1", tree, auth=auth_registry.creds)
    ref = f"docker://{auth_registry.host}/{repo}:1"
    line = one_line_error(gate("check", ref, "--no-tls-verify"), 3)
    assert "auth" in line and "--authfile" in line
    authfile = tmp_path / "auth.json"
    token = base64.b64encode(f"{auth_registry.user}:{auth_registry.password}".encode()).decode()
    authfile.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    proc = gate("check", ref, "--no-tls-verify", "--authfile", str(authfile), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert report(proc)["digest"] == tree.digest
    assert auth_registry.password not in proc.stdout + proc.stderr


def test_tls_registry_needs_its_ca(tls_registry: Registry, repo: str) -> None:
    tree = f.image(f.Platform("linux", "amd64"))
    f.push(tls_registry, repo, "1", tree, cafile=tls_registry.cafile)
    ref = f"docker://{tls_registry.host}/{repo}:1"
    line = one_line_error(gate("check", ref), 3)
    assert "tls" in line and "--cert-dir" in line
    proc = gate("check", ref, "--cert-dir", str(tls_registry.cert_dir), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert report(proc)["digest"] == tree.digest


def test_oci_layout_and_archive_sources(tmp_path: Path) -> None:
    tree = f.python_like()
    f.write_layout(tmp_path / "layout", "3.12", tree)
    f.write_archive(tmp_path / "image.tar", "3.12", tree)
    for source in (
        f"oci:{tmp_path / 'layout'}:3.12",
        f"oci:{tmp_path / 'layout'}",
        f"oci-archive:{tmp_path / 'image.tar'}:3.12",
    ):
        proc = gate("check", source, "--target", "quay.io/a/b:1", "--format", "json")
        assert proc.returncode == 1, proc.stderr
        data = report(proc)
        assert data["digest"] == tree.digest
        assert data["targets"][0]["verdict"] == "fail"
        fixes = {x["fix"] for x in data["targets"][0]["findings"] if x["rule"] == "mixed-oci-index"}
        assert fixes == {f"skopeo copy --all --format oci {source} docker://quay.io/a/b:1"}


def test_layout_whose_entry_has_a_docker_media_type(tmp_path: Path) -> None:
    """buildx with oci-mediatypes=false writes such layouts; skopeo 1.9 cannot open them, the gate reads them."""
    tree = f.docker_list([f.Entry(f.image(f.Platform("linux", "amd64"), fmt="docker"), f.Platform("linux", "amd64"))])
    f.write_layout(tmp_path / "l", "v1", tree)
    assert json.loads((tmp_path / "l" / "index.json").read_text())["manifests"][0]["mediaType"] == f.DOCKER_LIST
    proc = gate("check", f"oci:{tmp_path / 'l'}:v1", "--target", "quay.io/a/b:1", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert report(proc)["targets"][0]["verdict"] == "pass"


def test_layout_tag_errors_name_the_tags(tmp_path: Path) -> None:
    f.write_layout(tmp_path / "l", "v1", f.image(f.Platform("linux", "amd64")))
    line = one_line_error(gate("check", f"oci:{tmp_path / 'l'}:v2"), 2)
    assert "no entry named 'v2'" in line and "v1" in line


def test_saved_manifest_with_and_without_children(tmp_path: Path) -> None:
    tree = f.index([f.Entry(f.image(f.Platform("linux", "amd64")), f.Platform("linux", "amd64"))])
    bad = json.loads(tree.top.data)
    bad["manifests"][0]["size"] += 1
    saved = tmp_path / "top.json"
    saved.write_text(json.dumps(bad))
    children = tmp_path / "children"
    children.mkdir()
    for m in tree.manifests:
        (children / f"{m.hex}.json").write_bytes(m.data)
    proc = gate("check", str(saved), "--profile", "oci", "--format", "json")
    alone = report(proc)["targets"][0]
    assert (alone["verdict"], proc.returncode) == ("warn", 0)  # never "pass" when the children were not read
    assert [(x["rule"], x["severity"], x["path"]) for x in alone["findings"]] == [
        ("children-not-inspected", "warning", "manifests")
    ]
    assert any("descriptor-size-mismatch" in n for n in alone["notices"])
    with_children = report(
        gate("check", str(saved), "--children", str(children), "--profile", "oci", "--format", "json")
    )["targets"][0]
    assert with_children["verdict"] == "fail"
    assert [x["rule"] for x in with_children["findings"] if x["severity"] == "error"] == ["descriptor-size-mismatch"]


def test_not_json_is_a_usage_error(tmp_path: Path) -> None:
    saved = tmp_path / "x.json"
    saved.write_bytes(b"\xff\xfe not json")
    line = one_line_error(gate("check", str(saved)), 2)
    assert "not JSON" in line


def test_version_prints_skopeo() -> None:
    proc = gate("--version")
    assert proc.returncode == 0
    found = subprocess.run(["skopeo", "--version"], capture_output=True, text=True, check=True).stdout.split()[-1]
    assert proc.stdout.strip() == f"registry-gate 0.1.0 (skopeo {found})"


def test_archive_children_read_concurrently_stay_intact(tmp_path: Path) -> None:
    """Children of an oci-archive are read from several threads through one tar file."""
    from gate.sources import open_source

    plats = [f.Platform("linux", a) for a in ("amd64", "arm64", "s390x", "ppc64le", "386", "riscv64")]
    tree = f.index([f.Entry(f.image(p), p) for p in plats] + [f.attestation_entry(f.image(p)) for p in plats])
    f.write_archive(tmp_path / "i.tar", "1", tree)
    for _ in range(20):
        image = open_source(f"oci-archive:{tmp_path / 'i.tar'}:1", jobs=8)
        assert [n.manifest.digest for n in image.nodes[1:] if n.manifest] == [
            e["digest"] for e in tree.json()["manifests"]
        ]


@pytest.mark.parametrize(
    ("profile", "verdict", "notice"),
    [
        ("quay@3.12", "fail", None),
        ("quay@3.x", "pass", "quay@3.x: read as 3.18, the newest release of that series"),
        ("quay@4.0", "pass", "quay@4.0: not a version the profile knows (3.5, "),
        ("dockerhub@3", "pass", "dockerhub@3: the dockerhub profile has no versions"),
    ],
)
def test_versions_the_profile_does_not_list_are_never_silent(profile: str, verdict: str, notice: str | None) -> None:
    root = Path(__file__).resolve().parent.parent
    proc = gate(
        "check",
        f"oci:{root / 'examples' / 'python-3.12'}:3.12",
        "--target",
        f"r.example/a/b:1={profile}",
        "--format",
        "json",
    )
    t = report(proc)["targets"][0]
    assert t["verdict"] == verdict
    if notice is None:
        assert t["notices"] == []
    else:
        assert [n for n in t["notices"] if n.startswith(notice)], t["notices"]


def test_text_says_when_a_warning_fails_the_gate() -> None:
    root = Path(__file__).resolve().parent.parent
    source = f"oci:{root / 'examples' / 'python-3.12'}:3.12"
    strict = gate("check", source, "--target", "ghcr.io/a/b:1", "--fail-on", "warning")
    assert strict.returncode == 1
    assert "WARN  ghcr.io/a/b:1  [ghcr, host ghcr.io]  (fails the gate: --fail-on warning)" in strict.stdout
    lenient = gate("check", source, "--target", "ghcr.io/a/b:1")
    assert lenient.returncode == 0
    assert "WARN  ghcr.io/a/b:1  [ghcr, host ghcr.io]\n" in lenient.stdout


def test_children_folder_names_and_a_missing_child(tmp_path: Path) -> None:
    tree = f.index([f.Entry(f.image(f.Platform("linux", "amd64")), f.Platform("linux", "amd64"))])
    saved = tmp_path / "top.json"
    saved.write_bytes(tree.top.data)
    (tmp_path / "kids").mkdir()
    child = tree.manifests[0]
    line = one_line_error(gate("check", str(saved), "--children", str(tmp_path / "kids")), 3)
    assert f"no file for manifests[0] ({child.digest})" in line and f"> {tmp_path / 'kids' / child.hex}.json" in line
    (tmp_path / "kids" / f"{child.digest}.json").write_bytes(child.data)
    proc = gate("check", str(saved), "--children", str(tmp_path / "kids"), "--profile", "oci", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert report(proc)["targets"][0]["verdict"] == "pass"


def test_fix_commands_carry_the_flags_the_source_was_read_with(tmp_path: Path) -> None:
    convert = "skopeo copy --all --format oci {source} {target}"
    flags = ["--src-tls-verify=false", "--src-authfile=/my auth.json", "--src-cert-dir=/certs"]
    assert fix_command(convert, "docker://h.io/a:1", "docker://q.io/b:1", flags) == (
        "skopeo copy --src-tls-verify=false '--src-authfile=/my auth.json' --src-cert-dir=/certs "
        "--all --format oci docker://h.io/a:1 docker://q.io/b:1"
    )
    # a command that does not read the source, or that is not skopeo's, is left as written
    assert fix_command("oras push {target}", "docker://h.io/a:1", "docker://q.io/b:1", flags) == (
        "oras push docker://q.io/b:1"
    )
    # flags for a registry never reach a fix for a layout source
    layout = tmp_path / "layout"
    f.write_layout(layout, "3.12", f.python_like())
    image = open_source(f"oci:{layout}:3.12")
    policies = Policies()
    target = target_from_option("quay.io/acme/python:3.12", policies)
    fixes = {x.fix for x in evaluate(image, target, policies, flags).findings if x.rule == "mixed-oci-index"}
    assert fixes == {f"skopeo copy --all --format oci oci:{layout}:3.12 docker://quay.io/acme/python:3.12"}


def test_odd_authfile_paths_in_fix_commands_are_escaped_not_fatal(
    python_312: tuple[str, f.Tree], tmp_path: Path
) -> None:
    """An --authfile path with a terminal escape, a backslash and a byte that is not UTF-8 reaches the fix
    command escaped in every format, and the verdict still comes out (it used to crash the markdown writer)."""
    ref, _ = python_312
    folder = tmp_path / "odd\x1b[31m\\dir\udcff"  # \udcff is the byte 0xff in a file name
    folder.mkdir()
    (folder / "auth.json").write_text("{}")
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    proc = gate(
        "check", f"docker://{ref}", "--no-tls-verify", "--authfile", str(folder / "auth.json"),
        "-t", "quay.io/acme/python:3.12", "-f", "text", "-o", "-", "-f", "markdown", "-o", str(md),
        "-f", "json", "-o", str(js),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "\x1b" not in proc.stdout and "Traceback" not in proc.stderr
    fix = next(x["fix"] for x in report_file(js)["targets"][0]["findings"] if x["rule"] == "mixed-oci-index")
    assert "--src-authfile=" in fix and "\\u001b[31m\\dir\\udcff/auth.json" in fix
    assert f"`{fix}`" in md.read_text()  # the code span keeps the backslashes as they are


def report_file(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
