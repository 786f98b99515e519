"""Property tests: for arbitrary JSON-ish documents, `gate.manifest.parse` raises nothing but ManifestError, and
evaluating every built-in profile over what it returns raises nothing at all."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate import manifest as mf
from gate.engine import Target, evaluate
from gate.errors import ManifestError
from gate.policy import Registry
from gate.sources import resolve

KEYS = [
    "schemaVersion", "mediaType", "manifests", "config", "layers", "blobs", "digest", "size", "platform",
    "annotations", "subject", "artifactType", "urls", "architecture", "os", "variant", "os.version", "os.features",
    "features", "data", "fsLayers", "history", "signatures", "name", "tag", "blobSum", "v1Compatibility",
]  # fmt: skip
STRINGS = [
    mf.OCI_INDEX, mf.OCI_MANIFEST, mf.OCI_ARTIFACT, mf.OCI_CONFIG, mf.OCI_EMPTY, mf.DOCKER_LIST, mf.DOCKER_MANIFEST,
    mf.DOCKER_CONFIG, mf.DOCKER_LAYER, mf.DOCKER_FOREIGN_LAYER, "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.distribution.manifest.v1+prettyjws", "application/vnd.in-toto+json",
    "sha256:" + "a" * 64, "sha256:" + "A" * 64, "sha512:" + "b" * 128, "sha256:short", "md5:abc", "linux", "amd64",
    "arm", "v7", "unknown", "windows", "10.0.17763.1", "", "vnd.docker.reference.type", "attestation-manifest",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(STRINGS),
    st.text(max_size=20),
    st.just(2),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=8),
    ),
    max_leaves=60,
)
tops = st.fixed_dictionaries(
    {"schemaVersion": st.one_of(st.just(2), scalars)},
    optional={
        "mediaType": st.one_of(st.sampled_from(STRINGS), scalars),
        "manifests": st.lists(st.dictionaries(st.sampled_from(KEYS), documents, max_size=6), max_size=6),
        "config": documents,
        "layers": st.lists(documents, max_size=4),
        "subject": documents,
        "annotations": documents,
        "artifactType": documents,
        "fsLayers": documents,
    },
)

_POLICIES = Registry()
_TARGETS = [Target(None, None, name, None, "--profile") for name in sorted(_POLICIES.profiles)]


def parse_or_manifest_error(raw: bytes, declared: str | None) -> mf.Manifest | None:
    try:
        return mf.parse(raw, declared)
    except ManifestError:
        return None


def evaluate_everywhere(top: mf.Manifest) -> None:
    image = resolve("saved.json", top, None)
    for target in _TARGETS:
        result = evaluate(image, target, _POLICIES)
        assert result.verdict in ("pass", "warn", "fail")


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(doc=documents, declared=st.one_of(st.none(), st.sampled_from(STRINGS)))
def test_any_json_value(doc: Any, declared: str | None) -> None:
    top = parse_or_manifest_error(json.dumps(doc).encode(), declared)
    if top is not None:
        evaluate_everywhere(top)


@SETTINGS
@given(doc=tops, declared=st.one_of(st.none(), st.sampled_from(STRINGS)))
def test_manifest_shaped_documents(doc: dict[str, Any], declared: str | None) -> None:
    top = parse_or_manifest_error(json.dumps(doc).encode(), declared)
    assert top is not None  # a JSON object always parses; what is wrong becomes a problem, then a finding
    evaluate_everywhere(top)


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    top = parse_or_manifest_error(raw, None)
    if top is not None:
        evaluate_everywhere(top)
