"""The parser reads bytes as a registry (Go's encoding/json) would, and never crashes on a document."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from gatecli import run_gate

from gate import manifest as mf

DIGEST = "sha256:" + "a" * 64
OCI_IMAGE = {
    "schemaVersion": 2,
    "mediaType": mf.OCI_MANIFEST,
    "config": {"mediaType": mf.OCI_CONFIG, "digest": DIGEST, "size": 2},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 3}],
}


def problems(raw: bytes) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in mf.parse(raw).problems]


def test_clean_manifest_has_no_problems() -> None:
    m = mf.parse(json.dumps(OCI_IMAGE).encode())
    assert (m.kind, m.type, m.problems) == ("image", mf.OCI_MANIFEST, [])
    assert m.digest == mf.digest_of(json.dumps(OCI_IMAGE).encode())


def test_byte_order_mark_is_a_problem_not_a_crash() -> None:
    found = problems(b"\xef\xbb\xbf" + json.dumps(OCI_IMAGE).encode())
    assert found == [("", "starts with a UTF-8 byte-order mark, which registries refuse")]


def test_utf16_is_a_problem() -> None:
    assert problems(json.dumps(OCI_IMAGE).encode("utf-16-le")) == [
        ("", "is UTF-16-LE, not UTF-8; registries refuse it")
    ]


def test_nan_is_a_problem() -> None:
    raw = json.dumps({**OCI_IMAGE, "x-extra": 1}).replace("1}", "NaN}").encode()
    assert ("", "contains NaN, which is not JSON; registries refuse it") in problems(raw)


def test_schema_version_must_be_the_integer_2() -> None:
    raw = json.dumps({**OCI_IMAGE, "schemaVersion": 2.0}).encode()
    assert problems(raw) == [("schemaVersion", "must be 2, not 2.0")]


def test_registered_digests_are_lowercase_hex_of_their_length() -> None:
    doc = json.loads(json.dumps(OCI_IMAGE))
    doc["config"]["digest"] = "sha256:" + "A" * 64
    doc["layers"][0]["digest"] = "sha256:abc"
    found = dict(problems(json.dumps(doc).encode()))
    assert set(found) == {"config.digest", "layers[0].digest"}
    assert "64 lowercase hex digits" in found["config.digest"]


def test_extended_digest_algorithms_stay_valid() -> None:
    doc = json.loads(json.dumps(OCI_IMAGE))
    doc["config"]["digest"] = "sha256+b64:" + "c" * 43
    assert problems(json.dumps(doc).encode()) == []


def test_huge_integers_do_not_crash() -> None:
    raw = json.dumps(OCI_IMAGE).replace('"size": 2', '"size": ' + "9" * 5001).encode()
    assert problems(raw) == [("config.size", "must be an integer, not a number")]


def test_media_type_of_the_wrong_type_is_a_problem() -> None:
    m = mf.parse(json.dumps({**OCI_IMAGE, "mediaType": ["x"]}).encode())
    assert ("mediaType", "must be a string, not an array") in [(p.path, p.message) for p in m.problems]
    assert m.kind == "image"  # from its shape


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"schemaVersion": 2, "manifests": []}, mf.OCI_INDEX),
        ({k: v for k, v in OCI_IMAGE.items() if k != "mediaType"}, mf.OCI_MANIFEST),
        ({"schemaVersion": 2, "config": {"mediaType": mf.DOCKER_CONFIG}, "layers": []}, mf.DOCKER_MANIFEST),
        ({"schemaVersion": 1, "fsLayers": [], "signatures": []}, mf.DOCKER_SCHEMA1_SIGNED),
    ],
)
def test_type_is_guessed_from_the_shape_when_not_named(doc: dict[str, object], expected: str) -> None:
    m = mf.parse(json.dumps(doc).encode())
    assert (m.media_type, m.type) == (None, expected)


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return run_gate(*args)


def test_untyped_mixed_index_still_fails_quay(tmp_path: Path) -> None:
    """An index without mediaType is pushed as an OCI index; its Docker children still trip Quay."""
    doc = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": mf.DOCKER_MANIFEST,
                "digest": DIGEST,
                "size": 5,
                "platform": {"os": "windows", "architecture": "amd64"},
            }
        ],
    }
    saved = tmp_path / "idx.json"
    saved.write_text(json.dumps(doc))
    proc = gate("check", str(saved), "--target", "quay.io/a/b:1", "--format", "json")
    findings = json.loads(proc.stdout)["targets"][0]["findings"]
    assert ("mixed-oci-index", "error") in {(x["rule"], x["severity"]) for x in findings}
    assert proc.returncode == 1


def test_smuggled_control_characters_are_escaped_in_text(tmp_path: Path) -> None:
    evil = "x\n\nPASS  quay.io/evil\n::error::\x1b[32m\ud800"
    doc = {
        "schemaVersion": 2,
        "mediaType": mf.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mf.DOCKER_MANIFEST,
                "digest": DIGEST,
                "size": 5,
                "platform": {"os": evil, "architecture": "a"},
            }
        ],
    }
    saved = tmp_path / "m.json"
    saved.write_text(json.dumps(doc))
    proc = gate("check", str(saved), "--target", "quay.io/a/b:1")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "\x1b" not in proc.stdout and "\n::error::" not in proc.stdout
    assert not [line for line in proc.stdout.splitlines() if line.startswith("PASS")]
    assert "x\\u000a\\u000aPASS  quay.io/evil\\u000a::error::\\u001b[32m\\ud800/a" in proc.stdout


def test_fix_commands_quote_their_paths(tmp_path: Path) -> None:
    import factory as f

    layout = tmp_path / "my dir;touch PWNED"
    f.write_layout(layout, "1", f.python_like())
    proc = gate("check", f"oci:{layout}:1", "--target", "quay.io/a/b:1", "--format", "json")
    fixes = {x["fix"] for x in json.loads(proc.stdout)["targets"][0]["findings"] if x["rule"] == "mixed-oci-index"}
    assert fixes == {f"skopeo copy --all --format oci 'oci:{layout}:1' docker://quay.io/a/b:1"}


@pytest.mark.parametrize("target", ["quay.io", "localhost:5000", "[::1]:5000"])
def test_a_host_alone_is_not_a_target(target: str) -> None:
    proc = gate("check", "x.json", "--target", target)
    assert proc.returncode == 2
    assert "names a registry, not an image" in proc.stderr
