"""Ground truth: the `distribution` profile against a real CNCF distribution 2.8 (Debian's docker-registry).

Every rule's examples are pushed with the distribution HTTP API (blobs, then child manifests by digest, then the
top by tag). For each rule the profile runs at error, the registry must refuse the failing example; for each rule
it runs at warning, info or off, the registry must take it (otherwise the profile under-states a refusal). Passing
examples must always be taken. Parametrized over the catalog and the profile, so both stay honest as they grow.

Measured on 2.8.2 (see REFUSALS): a layer with `urls` -> 500 MANIFEST_BLOB_UNKNOWN; a manifest over 4 MiB ->
400 MANIFEST_INVALID ("request body too large"); the OCI artifact manifest type -> 400 MANIFEST_INVALID; unsigned
schema 1 -> 400 MANIFEST_INVALID; a Docker v2s2 manifest without its mediaType -> 400 MANIFEST_INVALID; a
repository name that is not lowercase components, or a tag starting with `-` -> 404 "page not found" (the route
does not match); a repository name over 255 characters -> 500. zstd layers, a missing OCI mediaType, empty layers,
a subject that is not there, an empty index, mixed indexes, OCI children in a
Docker list, nested indexes and duplicate platforms are all accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import factory as f
import pytest
from registry import Registry, unique_repo

from gate.policy import Registry as Policies
from gate.reference import parse as parse_reference
from gate.rules import catalog
from gate.rules.examples import materialize

PROFILE, VERSION = "distribution", "2.8"  # Debian 12's docker-registry is 2.8.2

# What 2.8.2 answers to the failing examples it refuses: (HTTP status, error code or None for a bare 404/HEAD).
REFUSALS: dict[str, tuple[int, str | None]] = {
    "schema": (400, "MANIFEST_INVALID"),
    "schema1": (400, "MANIFEST_INVALID"),
    "docker-missing-media-type": (400, "MANIFEST_INVALID"),
    "manifest-type-not-accepted": (400, "MANIFEST_INVALID"),
    "oci-artifact-manifest": (400, "MANIFEST_INVALID"),
    "manifest-size": (400, "MANIFEST_INVALID"),
    "foreign-layers": (500, "MANIFEST_BLOB_UNKNOWN"),
    "repository-name": (404, None),
    "tag-format": (404, None),
    "repository-length": (500, None),
}
# Failing examples 2.8.2 stores although other registries refuse them.
ACCEPTED = (
    "zstd-layers",
    "missing-media-type",
    "empty-layers",
    "empty-index",
    "mixed-oci-index",
    "mixed-docker-list",
    "nested-index",
    "duplicate-platform",
)
# Profile settings that the registry contradicts today, measured here; each is for the profile's owner to settle.
# strict: the day the profile (or the example) is fixed, the mark must go.
DISAGREEMENTS: dict[str, str] = {
    "refused:descriptor-media-type-mismatch": "profile says error (from oci); 2.8.2 stores an index whose entry "
    "mediaType differs from the child's own",
    "refused:descriptor-size-mismatch": "profile says error (from oci); 2.8.2 stores an index whose entry size is "
    "wrong (it checks only that the child exists)",
    "refused:docker-v2s2-undefined-types": "profile says error (from oci); 2.8.2 stores a v2s2 manifest with OCI "
    "config/layer types",
}

DIGEST = re.compile(r"sha(?:256|384|512):[a-f0-9]+")


def _settings() -> dict[str, str]:
    effective = Policies().resolve(PROFILE, VERSION)
    return {
        rule_id: (effective.settings[rule_id].severity if rule_id in effective.settings else "off")
        for rule_id in catalog()
    }


SEVERITY = _settings()
WITH_FAILING = sorted(r for r, rule in catalog().items() if rule.failing is not None)
REFUSED = [r for r in WITH_FAILING if SEVERITY[r] == "error"]
TAKEN = [r for r in WITH_FAILING if SEVERITY[r] != "error"]
WITH_PASSING = sorted(r for r, rule in catalog().items() if rule.passing is not None)


def _params(ids: list[str], direction: str) -> list[Any]:
    return [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, reason=DISAGREEMENTS[f"{direction}:{r}"]))
        if f"{direction}:{r}" in DISAGREEMENTS
        else r
        for r in ids
    ]


# --- examples as pushable trees -----------------------------------------------------------------------------------


def _content_type(doc: Any, declared: str | None) -> str:
    """What a client would send as Content-Type: the document's own mediaType, its parent's descriptor, its shape."""
    if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str):
        return str(doc["mediaType"])
    if declared:
        return declared
    if isinstance(doc, dict) and doc.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+" + ("prettyjws" if "signatures" in doc else "json")
    if isinstance(doc, dict) and "manifests" in doc:
        return f.OCI_INDEX
    config = doc.get("config") if isinstance(doc, dict) else None
    if isinstance(config, dict) and str(config.get("mediaType", "")).startswith("application/vnd.docker."):
        return "application/vnd.docker.distribution.manifest.v2+json"  # as docker and skopeo send it
    return f.OCI_MANIFEST


def _declared(docs: list[Any]) -> dict[str, str]:
    """digest -> the mediaType a descriptor gives it, anywhere in these documents."""
    out: dict[str, str] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("digest"), str) and isinstance(value.get("mediaType"), str):
                out.setdefault(value["digest"], value["mediaType"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for doc in docs:
        walk(doc)
    return out


def example_tree(example: Mapping[str, Any]) -> tuple[f.Tree, set[str]]:
    """The example as a factory tree (children in push order) and the digests of everything it carries."""
    top, manifests, blobs = materialize(example)
    docs = {d: json.loads(raw) for d, raw in manifests.items()}
    top_doc = json.loads(top)
    declared = _declared([top_doc, *docs.values()])
    children = [f.Tree(f.Blob(_content_type(docs[d], declared.get(d)), raw)) for d, raw in manifests.items()]
    tree = f.custom(
        top, _content_type(top_doc, None), children, [f.Blob("application/octet-stream", b) for b in blobs.values()]
    )
    return tree, {tree.digest, *manifests, *blobs}


def push(registry: Registry, example: Mapping[str, Any]) -> str:
    """Push to the example's target repository and tag when it names one, else to a fresh repository."""
    tree, _ = example_tree(example)
    target = example.get("target")
    if isinstance(target, str):
        ref = parse_reference(target)
        return f.push(registry, ref.repository, ref.tag or "latest", tree)
    return f.push(registry, unique_repo(), "latest", tree)


def _uncarried(example: Mapping[str, Any], error: f.PushError) -> list[str]:
    """Digests the registry names as unknown that the example does not carry (an example limit, not a verdict)."""
    _, carried = example_tree(example)
    if "MANIFEST_BLOB_UNKNOWN" not in error.codes:
        return []
    return [d for d in DIGEST.findall(error.body) if d not in carried]


# --- the tests ------------------------------------------------------------------------------------------------------


def test_the_profile_has_rules_on_both_sides() -> None:
    assert REFUSED and TAKEN
    assert {"schema", "schema1"} <= set(REFUSED)
    assert {"mixed-oci-index", "nested-index", "empty-index"} <= set(TAKEN)


@pytest.mark.parametrize("rule_id", WITH_PASSING)
def test_passing_example_is_accepted(registry: Registry, rule_id: str) -> None:
    example = catalog()[rule_id].passing
    assert example is not None
    tree, _ = example_tree(example)
    assert push(registry, example) == tree.digest


@pytest.mark.parametrize("rule_id", _params(REFUSED, "refused"))
def test_error_rule_failing_example_is_refused(registry: Registry, rule_id: str) -> None:
    example = catalog()[rule_id].failing
    assert example is not None
    with pytest.raises(f.PushError) as info:
        push(registry, example)
    error = info.value
    missing = _uncarried(example, error)
    if missing:
        pytest.skip(f"the failing example names {', '.join(missing)} without carrying it; refused for that alone")
    assert error.status >= 400
    if rule_id in REFUSALS:
        status, code = REFUSALS[rule_id]
        assert error.status == status, error
        assert (code in error.codes) if code else not error.codes, error
    else:
        assert error.codes or error.status == 404, error


@pytest.mark.parametrize("rule_id", _params(TAKEN, "taken"))
def test_lenient_rule_failing_example_is_accepted(registry: Registry, rule_id: str) -> None:
    """The profile runs it at warning, info or off, so distribution must store the failing example."""
    example = catalog()[rule_id].failing
    assert example is not None
    tree, _ = example_tree(example)
    try:
        digest = push(registry, example)
    except f.PushError as error:
        missing = _uncarried(example, error)
        if missing:
            pytest.skip(f"the failing example names {', '.join(missing)} without carrying it, so it cannot be pushed")
        pytest.fail(f"{PROFILE}@{VERSION} runs {rule_id} at {SEVERITY[rule_id]}, but the registry refused: {error}")
    assert digest == tree.digest


@pytest.mark.parametrize("rule_id", sorted(REFUSALS))
def test_measured_refusals(registry: Registry, rule_id: str) -> None:
    """What 2.8.2 answers, whatever the profile says (the profile tests above hold the profile to it)."""
    example = catalog()[rule_id].failing
    assert example is not None
    with pytest.raises(f.PushError) as info:
        push(registry, example)
    status, code = REFUSALS[rule_id]
    assert info.value.status == status, info.value
    assert (code in info.value.codes) if code else not info.value.codes, info.value
    if rule_id == "manifest-size":
        assert "request body too large" in info.value.body


@pytest.mark.parametrize("rule_id", ACCEPTED)
def test_measured_acceptances(registry: Registry, rule_id: str) -> None:
    example = catalog()[rule_id].failing
    assert example is not None
    tree, _ = example_tree(example)
    assert push(registry, example) == tree.digest


def test_subject_that_is_not_there_is_accepted(registry: Registry) -> None:
    """OCI 1.1: a registry must take a referrer before its subject; 2.8.2 does (it does not look)."""
    example = catalog()["subject-field"].failing
    assert example is not None and "subject" in example["top"]
    tree, _ = example_tree(example)
    alone = f.custom(tree.top.data, tree.top.media_type, blobs=tree.blobs)
    subject = json.loads(alone.top.data)["subject"]["digest"]
    assert subject not in {b.digest for b in alone.blobs} and not alone.manifests
    assert f.push(registry, unique_repo(), "referrer", alone) == tree.digest


def _put(url: str, data: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _upload(registry: Registry, repo: str, data: bytes, digest: str) -> int:
    request = urllib.request.Request(f"{registry.url}/v2/{repo}/blobs/uploads/", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        location = urllib.parse.urljoin(registry.url, response.headers["Location"])
    sep = "&" if "?" in location else "?"
    return _put(f"{location}{sep}digest={urllib.parse.quote(digest)}", data, "application/octet-stream")[0]


@pytest.mark.parametrize("algorithm", ["sha384", "sha512"])
def test_digest_algorithms(registry: Registry, algorithm: str) -> None:
    """2.8.2 stores sha384/sha512 blobs and manifests whose descriptors use them, but refuses a manifest put by a
    digest other than sha256 (DIGEST_INVALID): the digest-algorithm rule's example cannot carry such a blob."""
    repo = unique_repo()
    config = b"{}"
    digest = f"{algorithm}:{hashlib.new(algorithm, config).hexdigest()}"
    assert _upload(registry, repo, config, digest) == 201
    layer = f.Blob(f.OCI_LAYER_GZIP, f.gzip_stored(f.tar_one("a", b"a")))
    doc = {
        "schemaVersion": 2,
        "mediaType": f.OCI_MANIFEST,
        "config": {"mediaType": f.OCI_CONFIG, "digest": digest, "size": len(config)},
        "layers": [layer.descriptor()],
    }
    tree = f.custom(doc, blobs=[layer])
    assert f.push(registry, repo, "tagged", tree) == tree.digest
    raw = tree.top.data
    by_digest = f"{algorithm}:{hashlib.new(algorithm, raw).hexdigest()}"
    status, body = _put(f"{registry.url}/v2/{repo}/manifests/{by_digest}", raw, f.OCI_MANIFEST)
    assert (status, json.loads(body)["errors"][0]["code"]) == (400, "DIGEST_INVALID")


def test_tables_name_rules_that_exist() -> None:
    assert set(REFUSALS) <= set(catalog())
    assert set(ACCEPTED) <= set(catalog())
    current = {f"refused:{r}" for r in REFUSED} | {f"taken:{r}" for r in TAKEN}
    assert set(DISAGREEMENTS) <= current, "stale entries: the profile moved these rules; drop them"
