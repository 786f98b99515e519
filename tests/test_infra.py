"""The test infrastructure proven against the real parts: docker-registry 2.8 and skopeo."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import factory as f
import pytest
from registry import Registry, RegistryStartError, skopeo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "python-3.12"
AMD64 = f.Platform("linux", "amd64")


def raw(reg: Registry, ref: str, *flags: str) -> bytes:
    """`skopeo inspect --raw` of docker://HOST/<ref> with the registry's TLS flags."""
    return skopeo("inspect", "--raw", *reg.skopeo_tls_args(), *flags, f"docker://{reg.host}/{ref}").stdout


def copy(src: str, dst: str, *flags: str) -> None:
    skopeo("--insecure-policy", "copy", *flags, src, dst)


# -- registry.py ----------------------------------------------------------------------------------
def test_registry_variants_answer_v2(registry: Registry, auth_registry: Registry, tls_registry: Registry) -> None:
    with urllib.request.urlopen(f"{registry.url}/v2/") as resp:
        assert resp.status == 200
    assert registry.host.startswith("127.0.0.1:") and registry.url == f"http://{registry.host}"

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{auth_registry.url}/v2/")
    assert err.value.code == 401
    assert err.value.headers["WWW-Authenticate"] == 'Basic realm="registry-gate"'
    token = base64.b64encode(f"{auth_registry.user}:{auth_registry.password}".encode()).decode()
    req = urllib.request.Request(f"{auth_registry.url}/v2/", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200

    assert tls_registry.url.startswith("https://127.0.0.1:")
    assert tls_registry.cert_dir is not None and sorted(p.name for p in tls_registry.cert_dir.iterdir()) == ["ca.crt"]
    with urllib.request.urlopen(f"{tls_registry.url}/v2/", context=tls_registry.ssl_context()) as resp:
        assert resp.status == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{tls_registry.url}/v2/")


def test_registry_that_cannot_start_reports_its_log() -> None:
    reg = Registry(config={"storage": {"inmemory": {}}})  # two storage drivers: config error
    with pytest.raises(RegistryStartError, match="exited early") as err:
        reg.start()
    message = str(err.value)
    assert "must provide exactly one storage type. Provided: [" in message  # Go map order: either way round
    assert "filesystem" in message.split("Provided: [")[1] and "inmemory" in message.split("Provided: [")[1]
    assert not reg.running and not reg.root.exists()


def test_context_manager_stops_and_cleans_up() -> None:
    with Registry() as reg:
        assert reg.running
        root = reg.root
    assert not reg.running and not root.exists()


# -- factory.py -----------------------------------------------------------------------------------
def test_layers_configs_and_descriptors_are_consistent() -> None:
    lay = f.layer("hello\n", "etc/hello")
    tar = gzip.decompress(lay.blob.data)
    assert lay.blob.data[:4] == b"\x1f\x8b\x08\x00" and lay.blob.data[4:8] == b"\0\0\0\0"  # no name, mtime 0
    assert f.sha256(tar) == lay.diff_id
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        (member,) = t.getmembers()
        assert (member.name, member.mtime, t.extractfile(member).read()) == ("etc/hello", 0, b"hello\n")  # type: ignore[union-attr]

    tree = f.python_like()
    assert tree.digest == f.python_like().digest  # deterministic
    for m in tree.all_manifests:
        doc = m.json()
        assert doc["mediaType"] == m.media_type
        for d in doc.get("manifests", []):
            assert tree.manifest(d["digest"]).size == d["size"]
        if "config" in doc:
            blobs = {b.digest: b for b in tree.blobs}
            cfg = blobs[doc["config"]["digest"]]
            assert (cfg.media_type, cfg.size) == (doc["config"]["mediaType"], doc["config"]["size"])
            layers = [blobs[d["digest"]] for d in doc["layers"]]
            assert [lay.media_type for lay in layers] == [d["mediaType"] for d in doc["layers"]]
            if cfg.json()["os"] != "unknown":
                assert cfg.json()["rootfs"]["diff_ids"] == [f.sha256(gzip.decompress(b.data)) for b in layers]


def test_python_like_is_a_mixed_index() -> None:
    tree = f.python_like()
    entries = tree.json()["manifests"]
    assert tree.media_type == f.OCI_INDEX
    assert [(e["mediaType"], e["platform"]) for e in entries] == [
        (f.OCI_MANIFEST, {"architecture": "amd64", "os": "linux"}),
        (f.OCI_MANIFEST, {"architecture": "unknown", "os": "unknown"}),
        (f.OCI_MANIFEST, {"architecture": "arm64", "os": "linux", "variant": "v8"}),
        (f.OCI_MANIFEST, {"architecture": "unknown", "os": "unknown"}),
        (f.DOCKER_MANIFEST, {"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.2966"}),
        (f.DOCKER_MANIFEST, {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.6659"}),
    ]
    for image, att in ((entries[0], entries[1]), (entries[2], entries[3])):
        assert att["annotations"] == {
            "vnd.docker.reference.digest": image["digest"],
            "vnd.docker.reference.type": "attestation-manifest",
        }
        layer = tree.manifest(att["digest"]).json()["layers"][0]
        assert layer["mediaType"] == f.IN_TOTO
        assert layer["annotations"] == {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
    windows = tree.manifest(entries[4]["digest"]).json()
    assert windows["config"]["mediaType"] == f.DOCKER_CONFIG
    assert {lay["mediaType"] for lay in windows["layers"]} == {f.DOCKER_LAYER_GZIP}


# -- push + skopeo read-back ----------------------------------------------------------------------
def test_push_reads_back_identically_with_skopeo(registry: Registry, repo: str) -> None:
    tree = f.python_like()
    assert f.push(registry, repo, "3.12", tree) == tree.digest
    assert f.push(registry.url, repo, "3.12", tree) == tree.digest  # second push: every blob HEAD-skipped

    assert raw(registry, f"{repo}:3.12") == tree.top.data
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/{repo}:3.12").stdout)
    assert inspected["Digest"] == tree.digest
    for child in tree.manifests:
        assert raw(registry, f"{repo}@{child.digest}") == child.data
    amd64 = tree.json()["manifests"][0]["digest"]
    config = tree.manifest(amd64).json()["config"]["digest"]
    assert f.sha256(raw(registry, f"{repo}@{amd64}", "--config")) == config


def test_auth_registry_needs_credentials(auth_registry: Registry, repo: str, tmp_path: Path) -> None:
    tree = f.python_like()
    with pytest.raises(f.PushError) as err:
        f.push(auth_registry, repo, "3.12", tree)
    assert err.value.status == 401
    assert f.push(auth_registry, repo, "3.12", tree, auth=auth_registry.creds) == tree.digest

    ref = f"docker://{auth_registry.host}/{repo}:3.12"
    anon = skopeo("inspect", "--raw", "--tls-verify=false", "--no-creds", ref, check=False)
    assert anon.returncode == 1
    assert b"unauthorized: authentication required" in anon.stderr

    authfile = tmp_path / "auth.json"
    userpass = f"{auth_registry.user}:{auth_registry.password}".encode()
    authfile.write_text(json.dumps({"auths": {auth_registry.host: {"auth": base64.b64encode(userpass).decode()}}}))
    ok = skopeo("inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile), ref)
    assert ok.stdout == tree.top.data


def test_tls_registry_needs_its_cert_dir(tls_registry: Registry, repo: str) -> None:
    tree = f.python_like()
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        f.push(tls_registry, repo, "3.12", tree)
    assert f.push(tls_registry, repo, "3.12", tree, cafile=tls_registry.cafile) == tree.digest

    assert raw(tls_registry, f"{repo}:3.12") == tree.top.data  # uses --cert-dir
    ref = f"docker://{tls_registry.host}/{repo}:3.12"
    bare = skopeo("inspect", "--raw", ref, check=False)
    assert bare.returncode == 1
    assert b"x509: certificate signed by unknown authority" in bare.stderr


# -- OCI layout and the bundled example -----------------------------------------------------------
def test_layout_and_archive_copy_with_preserved_digests(registry: Registry, repo: str, tmp_path: Path) -> None:
    tree = f.python_like()
    layout = f.write_layout(tmp_path / "layout", "3.12", tree)
    archive = f.write_archive(tmp_path / "image.tar", "3.12", tree)
    assert skopeo("inspect", "--raw", f"oci:{layout}:3.12").stdout == tree.top.data
    assert skopeo("inspect", "--raw", f"oci-archive:{archive}:3.12").stdout == tree.top.data

    copy(
        f"oci-archive:{archive}:3.12",
        f"docker://{registry.host}/{repo}:3.12",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
    )
    assert raw(registry, f"{repo}:3.12") == tree.top.data


def test_bundled_example_copies_to_registry_with_same_digest(registry: Registry) -> None:
    index = json.loads((EXAMPLE / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"] == {f.REF_NAME: "3.12"} and entry["mediaType"] == f.OCI_INDEX
    copy(
        f"oci:{EXAMPLE}:3.12",
        f"docker://{registry.host}/library/python:3.12",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
    )
    top = raw(registry, "library/python:3.12")
    assert f.sha256(top) == entry["digest"] == f.python_like().digest
    assert top == (EXAMPLE / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")).read_bytes()


# -- skopeo conversions of the mixed index --------------------------------------------------------
def test_format_oci_copy_yields_pure_oci_index(registry: Registry, new_repo: Callable[[str], str]) -> None:
    """The documented fix: `skopeo copy --all --format oci` converts the index and every child."""
    tree = f.python_like()
    src, dst = new_repo("mixed"), new_repo("fixed")
    f.push(registry, src, "3.12", tree)
    copy(
        f"docker://{registry.host}/{src}:3.12",
        f"docker://{registry.host}/{dst}:3.12",
        "--all",
        "--format",
        "oci",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    )

    before, after = tree.json()["manifests"], json.loads(raw(registry, f"{dst}:3.12"))
    assert after["mediaType"] == f.OCI_INDEX
    assert [e["mediaType"] for e in after["manifests"]] == [f.OCI_MANIFEST] * 6
    assert [e["platform"] for e in after["manifests"]] == [e["platform"] for e in before]
    for old, new in zip(before, after["manifests"], strict=True):
        child = json.loads(raw(registry, f"{dst}@{new['digest']}"))
        assert child["mediaType"] == f.OCI_MANIFEST
        assert child["config"]["mediaType"] == f.OCI_CONFIG
        assert {lay["mediaType"] for lay in child["layers"]} <= {f.OCI_LAYER_GZIP, f.IN_TOTO}
        # already-OCI children are copied byte-for-byte; Docker children get new digests
        assert (new["digest"] == old["digest"]) == (old["mediaType"] == f.OCI_MANIFEST)
    # attestation entries still point at the (unchanged) image entries
    assert after["manifests"][1]["annotations"]["vnd.docker.reference.digest"] == after["manifests"][0]["digest"]


def test_preserve_digests_defeats_format_oci(registry: Registry, new_repo: Callable[[str], str]) -> None:
    """skopeo 1.9.3 exits 0 and silently copies the mixed index unchanged: never suggest both flags."""
    tree = f.python_like()
    src, dst = new_repo("mixed"), new_repo("kept")
    f.push(registry, src, "3.12", tree)
    copy(
        f"docker://{registry.host}/{src}:3.12",
        f"docker://{registry.host}/{dst}:3.12",
        "--all",
        "--preserve-digests",
        "--format",
        "oci",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    )
    assert raw(registry, f"{dst}:3.12") == tree.top.data  # still mixed, not converted


def test_format_v2s2_fails_on_attestations(registry: Registry, new_repo: Callable[[str], str]) -> None:
    src = new_repo("mixed")
    f.push(registry, src, "3.12", f.python_like())
    proc = skopeo(
        "--insecure-policy",
        "copy",
        "--all",
        "--format",
        "v2s2",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{registry.host}/{src}:3.12",
        f"docker://{registry.host}/{new_repo('v2s2')}:3.12",
        check=False,
    )
    assert proc.returncode == 1
    assert b'Unknown media type during manifest conversion: \\"application/vnd.in-toto+json\\"' in proc.stderr


# -- what distribution 2.8 refuses and accepts ----------------------------------------------------
def _foreign_windows() -> f.Tree:
    """A Windows v2s2 image whose base layer is foreign (urls, blob never uploaded)."""
    base = f.layer("servercore", media_type=f.DOCKER_LAYER_FOREIGN)
    img = f.image(f.Platform("windows", "amd64", os_version="10.0.17763.6659"), [base, f.layer("app")], fmt="docker")
    doc = img.json()
    doc["layers"][0]["urls"] = [f"https://mcr.microsoft.com/v2/windows/servercore/blobs/{base.blob.digest}"]
    return f.custom(doc, blobs=[b for b in img.blobs if b != base.blob])


def test_foreign_layer_urls_refused_by_default(registry: Registry, repo: str) -> None:
    tree = _foreign_windows()
    foreign = tree.json()["layers"][0]["digest"]
    with pytest.raises(f.PushError) as err:
        f.push(registry, repo, "win", tree)
    assert (err.value.method, err.value.status) == ("PUT", 500)
    assert err.value.codes == ["UNKNOWN", "UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    assert json.loads(err.value.body)["errors"][-1]["detail"] == foreign
    assert "invalid URL on layer" in registry.log_tail(50)  # only the log says why


def test_foreign_layer_urls_accepted_with_allow_list(repo: str) -> None:
    tree = _foreign_windows()
    knob = {"validation": {"manifests": {"urls": {"allow": [r"^https://mcr\.microsoft\.com/"]}}}}
    with Registry(config=knob) as reg:
        assert reg.config["validation"] == knob["validation"] and reg.config["storage"]["filesystem"]
        assert f.push(reg, repo, "win", tree) == tree.digest
        assert raw(reg, f"{repo}:win") == tree.top.data


def test_missing_index_child_is_manifest_blob_unknown(registry: Registry, repo: str) -> None:
    img = f.image(AMD64)
    orphan = f.custom(f.index([f.Entry(img, AMD64)]).json())  # the child is not carried along
    with pytest.raises(f.PushError) as err:
        f.push(registry, repo, "orphan", orphan)
    assert err.value.status == 400
    assert json.loads(err.value.body) == {
        "errors": [
            {"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": img.digest},
        ]
    }


def _hand_crafted() -> dict[str, f.Tree]:
    oci, docker = f.image(AMD64), f.image(AMD64, fmt="docker")
    other = f.image(AMD64, [f.layer("other")])
    return {
        "mixed-index": f.python_like(),
        "oci-in-docker-list": f.docker_list([f.Entry(oci, AMD64)]),
        "nested-index": f.index([f.Entry(f.index([f.Entry(oci, AMD64), f.attestation_entry(oci)]), AMD64)]),
        "zstd-layer": f.image(AMD64, [f.layer("z", media_type=f.OCI_LAYER_ZSTD)]),
        "subject-artifact": f.image(
            AMD64, extra={"artifactType": "application/vnd.example+json", "subject": oci.top.descriptor()}
        ),
        "empty-index": f.index([]),
        "duplicate-platform": f.index([f.Entry(oci, AMD64), f.Entry(other, AMD64)]),
        "docker-list-of-docker": f.docker_list([f.Entry(docker, AMD64)]),
    }


@pytest.mark.parametrize("case", list(_hand_crafted()))
def test_distribution_accepts_what_strict_registries_refuse(registry: Registry, repo: str, case: str) -> None:
    tree = _hand_crafted()[case]
    assert f.push(registry, repo, "t", tree) == tree.digest
    assert raw(registry, f"{repo}:t") == tree.top.data
