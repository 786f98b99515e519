"""The built-in profiles (issue #3, part A): evidence behind every severity, the host table, and the verdict at
each version boundary and for each [S]-graded fact of the research, evaluated in-process on rule examples."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from gate import manifest as mf
from gate.engine import Result, Target, evaluate
from gate.policy import Registry, split_profile
from gate.reference import parse
from gate.rules import catalog
from gate.rules.common import (
    ARM64,
    EMPTY_CONFIG,
    arm64_image,
    blob,
    docker_image,
    entry,
    index_doc,
    oci_image,
)
from gate.rules.examples import image, materialize

REGISTRY = Registry()
URL = re.compile(r"^https?://\S+$")


def example(rule_id: str, kind: str = "failing") -> dict[str, Any]:
    found = getattr(catalog()[rule_id], kind)
    assert found is not None
    return copy.deepcopy(dict(found))


def check(doc: dict[str, Any], spec: str, target: str | None = None) -> Result:
    name, version = split_profile(spec)
    ref = parse(target) if target else None
    return evaluate(image(doc), Target(ref, target, name, version, "--profile"), REGISTRY)


def decided(result: Result) -> tuple[str, set[str]]:
    """The verdict, and the rules whose findings made it (those at the verdict's severity)."""
    severity = {"fail": "error", "warn": "warning"}.get(result.verdict)
    return result.verdict, {f.rule for f in result.findings if f.severity == severity}


# --- evidence -------------------------------------------------------------------------------------------------------


def profile_versions() -> list[str]:
    return [
        f"{name}@{version}" if version else name
        for name, profile in sorted(REGISTRY.profiles.items())
        for version in dict.fromkeys([None, *profile.known_versions])
    ]


@pytest.mark.parametrize("spec", profile_versions())
def test_severity_follows_evidence(spec: str) -> None:
    """Every setting cites sources and grades its evidence; an error needs [S] or [R]; [I] is at most a warning."""
    problems = []
    for setting in REGISTRY.resolve(*split_profile(spec)).settings.values():
        where = f"{setting.rule.id} ({setting.origin})"
        if setting.evidence not in ("S", "R", "I"):
            problems.append(f"{where}: no evidence grade")
        if not setting.sources or not all(URL.match(u) for u in setting.sources):
            problems.append(f"{where}: no source URL")
        if setting.severity == "error" and setting.evidence not in ("S", "R"):
            problems.append(f"{where}: error on [{setting.evidence}] evidence")
        if setting.evidence == "I" and setting.severity == "error":
            problems.append(f"{where}: [I] alone gives at most a warning")
    assert problems == []


@pytest.mark.parametrize("name", sorted(REGISTRY.profiles))
def test_every_version_condition_matches_a_known_version(name: str) -> None:
    assert REGISTRY.warnings(name) == []


def test_every_rule_runs_somewhere() -> None:
    used = {
        setting.rule.id for spec in profile_versions() for setting in REGISTRY.resolve(*split_profile(spec)).active()
    }
    assert set(catalog()) - used == set()


def test_registries_extend_oci_and_consumers_are_consumers() -> None:
    for name in REGISTRY.profiles:
        chain = [name]
        while REGISTRY.profiles[chain[-1]].extends:
            chain.append(REGISTRY.profiles[chain[-1]].extends or "")
        assert chain[-1] == "oci", chain
    kinds = {n: p.kind for n, p in REGISTRY.profiles.items()}
    assert {n for n, k in kinds.items() if k == "consumer"} == {"aws-lambda", "azure-aci", "docker-engine"}


# --- hosts ----------------------------------------------------------------------------------------------------------

HOSTS = {
    "docker.io": "dockerhub",
    "registry-1.docker.io": "dockerhub",
    "index.docker.io": "dockerhub",
    "quay.io": "quay",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn": "ecr",
    "public.ecr.aws": "ecr-public",
    "gcr.io": "gar",
    "eu.gcr.io": "gar",
    "europe-west1-docker.pkg.dev": "gar",
    "acme.azurecr.io": "acr",
    "ghcr.io": "ghcr",
    "registry.gitlab.com": "gitlab",
    "acme.jfrog.io": "artifactory",
    "localhost:5000": "distribution",
    "127.0.0.1": "distribution",
}


@pytest.mark.parametrize(("host", "profile"), sorted(HOSTS.items()))
def test_host_table(host: str, profile: str) -> None:
    match = REGISTRY.match_host(host)
    assert match is not None and match[0].name == profile


def test_unknown_hosts_get_the_baseline() -> None:
    assert REGISTRY.match_host("registry.example.org") is None
    assert REGISTRY.match_host("harbor.example.org") is None


def test_saas_is_the_default_for_hosted_registries() -> None:
    for name in ("quay", "dockerhub", "ecr", "ecr-public", "gar", "acr", "ghcr", "gitlab", "artifactory"):
        assert REGISTRY.profiles[name].default_version == "saas", name
    # quay with no version is quay.io: the mixed-index fix is not assumed deployed there.
    assert REGISTRY.resolve("quay", None).settings["mixed-oci-index"].severity == "error"


# --- documents ------------------------------------------------------------------------------------------------------

MIXED = example("mixed-oci-index")
NESTED = example("nested-index")
CACHE_LIST = {
    "top": index_doc(
        blob(mf.DOCKER_LAYER, "layer"),
        blob("application/vnd.buildkit.cacheconfig.v0", '{"layers":[]}'),
        media_type=mf.DOCKER_LIST,
    )
}
REFERRER_INDEX = {"top": index_doc(entry("img", platform=None)), "children": {"img": oci_image()}}
EMPTY_CONFIG_ARTIFACT = {"top": oci_image(artifactType="application/spdx+json", config=EMPTY_CONFIG)}
ATTESTED = example("attestation-entries")
PLAIN_INDEX = {
    "top": index_doc(entry("a"), entry("b", platform=ARM64)),
    "children": {"a": oci_image(), "b": arm64_image()},
}
LIST_NO_PLATFORM = {
    "top": index_doc(entry("d", mf.DOCKER_MANIFEST, platform=None), media_type=mf.DOCKER_LIST),
    "children": {"d": docker_image()},
}
OCI_SINGLE = {"top": oci_image()}
OCI_FOREIGN = {
    "top": oci_image(
        layers=[
            blob(
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                "base layer",
                urls=["https://foreign.example.org/blobs/base"],
            )
        ]
    )
}
DOCKER_SINGLE = {"top": docker_image()}
DOCKER_LIST = {
    "top": index_doc(entry("d", mf.DOCKER_MANIFEST), media_type=mf.DOCKER_LIST),
    "children": {"d": docker_image()},
}
SUBJECT_WITH_PLATFORM = example("subject-platform")
REFERRER = example("subject-platform", "passing")
ZSTD = example("zstd-layers")
SCHEMA1 = example("schema1")
FOREIGN = example("foreign-layers")
ARTIFACT_MANIFEST = example("oci-artifact-manifest")
PARAMETERS = example("media-type-parameters")
NO_MEDIA_TYPE = example("missing-media-type")
DOCKER_CONFIG_IN_OCI = example("oci-manifest-docker-parts")
MIXED_LIST = example("mixed-docker-list")


def layers(n: int) -> dict[str, Any]:
    return {"top": oci_image(layers=[blob("application/vnd.oci.image.layer.v1.tar+gzip", f"l{i}") for i in range(n)])}


def big_layer(size: int) -> dict[str, Any]:
    return {"top": oci_image(layers=[{**blob("application/vnd.oci.image.layer.v1.tar+gzip", "big"), "size": size}])}


def padded(size: int) -> dict[str, Any]:
    """An OCI image manifest of exactly `size` bytes (an annotation pads it)."""
    base = len(materialize({"top": oci_image(annotations={"pad": ""})})[0])
    return {"top": oci_image(annotations={"pad": "x" * (size - base)})}


# (document, profile@version, target or None, expected verdict, the rule that decides it (None for pass))
BOUNDARIES = [
    # Quay: mixed indexes until 3.17.4 (and on quay.io), nested indexes until 3.14.
    (MIXED, "quay@3.8", None, "fail", "mixed-oci-index"),
    (MIXED, "quay@3.17.3", None, "fail", "mixed-oci-index"),
    (MIXED, "quay@3.17.4", None, "pass", None),
    (MIXED, "quay@3.18", None, "pass", None),
    (MIXED, "quay", None, "fail", "mixed-oci-index"),
    (NESTED, "quay@3.13", None, "fail", "nested-index"),
    (NESTED, "quay@3.14", None, "pass", None),
    (MIXED_LIST, "quay@3.18", None, "fail", "mixed-docker-list"),
    (MIXED_LIST, "quay", None, "fail", "mixed-docker-list"),
    (CACHE_LIST, "quay", None, "fail", "index-entry-not-manifest"),
    (CACHE_LIST, "quay@3.18", None, "fail", "index-entry-not-manifest"),
    (REFERRER_INDEX, "quay@3.10", None, "fail", "index-entry-no-platform"),
    (REFERRER_INDEX, "quay@3.11", None, "warn", "single-entry-no-platform"),
    (EMPTY_CONFIG_ARTIFACT, "quay@3.11", None, "fail", "config-type-not-allowed"),
    (EMPTY_CONFIG_ARTIFACT, "quay@3.12", None, "pass", None),
    (example("layer-type-not-allowed"), "quay@3.11", None, "fail", "layer-type-not-allowed"),
    (example("layer-type-not-allowed"), "quay@3.12", None, "pass", None),
    (ATTESTED, "quay@3.11", None, "pass", None),
    (DOCKER_CONFIG_IN_OCI, "quay@3.11", None, "fail", "oci-manifest-docker-parts"),
    (DOCKER_CONFIG_IN_OCI, "quay@3.12", None, "warn", "oci-manifest-docker-parts"),
    (OCI_SINGLE, "quay@3.5", None, "warn", "manifest-type-not-accepted"),
    (OCI_SINGLE, "quay@3.6", None, "pass", None),
    (OCI_SINGLE, "quay@3.5", "quay.example.org/acme/team/app:1", "fail", "repository-depth"),
    (OCI_SINGLE, "quay@3.6", "quay.example.org/acme/team/app:1", "pass", None),
    (ATTESTED, "quay@3.7", None, "warn", "attestation-entries"),
    (ATTESTED, "quay@3.8", None, "pass", None),
    (ARTIFACT_MANIFEST, "quay@3.18", None, "fail", "oci-artifact-manifest"),
    (PLAIN_INDEX, "quay@3.5", None, "warn", "manifest-type-not-accepted"),
    (PLAIN_INDEX, "quay", None, "pass", None),
    (DOCKER_LIST, "quay@3.5", None, "pass", None),
    # Harbor: OCI from 2.0; Trivy and attestations from 2.10; subjects from 2.8.
    (OCI_SINGLE, "harbor@1.10", None, "fail", "manifest-type-not-accepted"),
    (PLAIN_INDEX, "harbor@1.10", None, "fail", "manifest-type-not-accepted"),
    (DOCKER_LIST, "harbor@1.10", None, "pass", None),
    (OCI_SINGLE, "harbor@2.0", None, "pass", None),
    (ATTESTED, "harbor@2.9", None, "warn", "attestation-entries"),
    (ATTESTED, "harbor@2.10", None, "pass", None),
    (REFERRER, "harbor@2.7", None, "warn", "subject-field"),
    (REFERRER, "harbor@2.8", None, "pass", None),
    (ARTIFACT_MANIFEST, "harbor", None, "fail", "oci-artifact-manifest"),
    (FOREIGN, "harbor", None, "pass", None),
    # Artifactory: OCI from 7.11.1; OCI 1.1 from 7.90.1.
    (OCI_SINGLE, "artifactory@6.23", None, "fail", "manifest-type-not-accepted"),
    (OCI_SINGLE, "artifactory@7.11.1", None, "pass", None),
    (DOCKER_SINGLE, "artifactory@6.23", None, "pass", None),
    (REFERRER, "artifactory@7.11.1", None, "warn", "subject-field"),
    (REFERRER, "artifactory@7.90.1", None, "pass", None),
    # Nexus: OCI from 3.71.
    (OCI_SINGLE, "nexus@3.70", None, "warn", "manifest-type-not-accepted"),
    (OCI_SINGLE, "nexus@3.71", None, "pass", None),
    # distribution: OCI and URL validation from 2.7; schema 1 off; sha512 refused.
    (FOREIGN, "distribution@2.6", None, "pass", None),
    (FOREIGN, "distribution@2.7", None, "fail", "foreign-layers"),
    (FOREIGN, "distribution@3.0", None, "fail", "foreign-layers"),
    (OCI_SINGLE, "distribution@2.6", None, "fail", "manifest-type-not-accepted"),
    (OCI_SINGLE, "distribution@2.7", None, "pass", None),
    (MIXED, "distribution", None, "pass", None),
    (MIXED_LIST, "distribution", None, "pass", None),
    (SCHEMA1, "distribution@2.8", None, "fail", "schema1"),
    (OCI_SINGLE, "distribution", "localhost:5000/acme/app@sha512:" + "a" * 128, "fail", "digest-algorithm"),
    (NO_MEDIA_TYPE, "distribution", None, "pass", None),
    (ARTIFACT_MANIFEST, "distribution", None, "fail", "oci-artifact-manifest"),
    # zot: OCI only; artifact manifest gone in 2.0; 4 MiB cap from 2.1.16; schema-validated media types.
    (DOCKER_SINGLE, "zot", None, "fail", "manifest-type-not-accepted"),
    (DOCKER_LIST, "zot@2.1.2", None, "fail", "manifest-type-not-accepted"),
    (OCI_SINGLE, "zot", None, "pass", None),
    (ARTIFACT_MANIFEST, "zot@1.4", None, "pass", None),
    (ARTIFACT_MANIFEST, "zot@2.0", None, "fail", "oci-artifact-manifest"),
    (padded(4 * 1024 * 1024 + 1), "zot@2.1.2", None, "warn", "manifest-size"),
    (padded(4 * 1024 * 1024 + 1), "zot@2.1.16", None, "fail", "manifest-size"),
    (PARAMETERS, "zot", None, "fail", "media-type-parameters"),
    (ATTESTED, "zot", None, "warn", "attestation-entries"),
    # ECR and ECR Public: limits and strict parsing.
    (big_layer(10000 * 1024 * 1024 + 1), "ecr", None, "pass", None),
    (big_layer(10000 * 1024 * 1024 + 1), "ecr-public", None, "fail", "layer-size"),
    (big_layer(52000 * 1024 * 1024 + 1), "ecr", None, "fail", "layer-size"),
    (layers(500), "ecr", None, "pass", None),
    (layers(501), "ecr", None, "fail", "layer-count"),
    (layers(501), "ecr-public", None, "fail", "layer-count"),
    (padded(4194304), "ecr", None, "pass", None),
    (padded(4194305), "ecr", None, "fail", "manifest-size"),
    (NO_MEDIA_TYPE, "ecr", None, "fail", "missing-media-type"),
    (NO_MEDIA_TYPE, "ecr-public", None, "fail", "missing-media-type"),
    (SUBJECT_WITH_PLATFORM, "ecr", None, "fail", "subject-platform"),
    (REFERRER, "ecr", None, "pass", None),
    (CACHE_LIST, "ecr", None, "fail", "index-entry-not-manifest"),
    (ARTIFACT_MANIFEST, "ecr", None, "fail", "oci-artifact-manifest"),
    (ATTESTED, "ecr", None, "warn", "attestation-entries"),
    (OCI_SINGLE, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com/" + "a" * 256 + ":1", "pass", None),
    (OCI_SINGLE, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com/" + "a" * 257 + ":1", "fail", "repository-length"),
    (OCI_SINGLE, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com/a:1", "fail", "repository-length"),
    (OCI_SINGLE, "ecr-public", "public.ecr.aws/" + "a" * 205 + ":1", "pass", None),
    (OCI_SINGLE, "ecr-public", "public.ecr.aws/" + "a" * 206 + ":1", "fail", "repository-length"),
    (OCI_SINGLE, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com/acme/app:" + "t" * 300, "pass", None),
    (OCI_SINGLE, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com/acme/app:" + "t" * 301, "fail", "tag-format"),
    (OCI_SINGLE, "oci", "registry.example.org/acme/app:" + "t" * 129, "fail", "tag-format"),
    # Docker Hub: namespace/repository only; mixed indexes served; schema 1 pushes deprecated.
    (OCI_SINGLE, "dockerhub", "docker.io/acme/team/app:1", "fail", "repository-depth"),
    (OCI_SINGLE, "dockerhub", "docker.io/python:3.12", "pass", None),
    (OCI_SINGLE, "dockerhub", "docker.io/Acme/app:1", "fail", "repository-name"),
    (MIXED, "dockerhub", None, "pass", None),
    (SCHEMA1, "dockerhub", None, "fail", "schema1"),
    (FOREIGN, "dockerhub", None, "warn", "foreign-layers"),
    (CACHE_LIST, "dockerhub", None, "pass", None),
    # GAR, GHCR, GitLab, ACR.
    (CACHE_LIST, "gar", None, "fail", "index-entry-not-manifest"),
    (MIXED, "gar", None, "warn", "mixed-oci-index"),
    (ATTESTED, "ghcr", None, "warn", "attestation-entries"),
    (NESTED, "ghcr", None, "pass", None),
    (FOREIGN, "ghcr", None, "pass", None),
    (EMPTY_CONFIG_ARTIFACT, "gitlab", None, "pass", None),
    (
        {"top": oci_image(config=blob("application/vnd.acme.thing.config.v1+json", "{}"))},
        "gitlab",
        None,
        "fail",
        "config-type-not-allowed",
    ),
    (REFERRER, "gitlab", None, "warn", "subject-field"),
    (ARTIFACT_MANIFEST, "acr", None, "pass", None),
    # More sourced facts: Quay's list schema and v2s2 types, size caps, names, digests, the spec itself.
    (LIST_NO_PLATFORM, "quay@3.18", None, "fail", "index-entry-no-platform"),
    (LIST_NO_PLATFORM, "distribution", None, "warn", "single-entry-no-platform"),
    (example("docker-v2s2-undefined-types"), "quay@3.18", None, "fail", "docker-v2s2-undefined-types"),
    (OCI_SINGLE, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com/acme/app@sha512:" + "a" * 128, "fail", "digest-algorithm"),
    (padded(4 * 1024 * 1024 + 1), "harbor", None, "fail", "manifest-size"),
    (padded(4 * 1024 * 1024 + 1), "distribution@2.7", None, "fail", "manifest-size"),
    (example("manifest-type-not-accepted"), "distribution@3.0", None, "fail", "manifest-type-not-accepted"),
    (OCI_SINGLE, "distribution", "localhost:5000/Acme/app:1", "fail", "repository-name"),
    (SCHEMA1, "ecr", None, "fail", "schema1"),
    (SCHEMA1, "harbor", None, "fail", "schema1"),
    (OCI_FOREIGN, "zot", None, "pass", None),
    (OCI_FOREIGN, "distribution", None, "fail", "foreign-layers"),
    (MIXED, "oci", None, "pass", None),
    (NESTED, "oci", None, "pass", None),
    (example("index-entry-no-platform"), "oci", None, "warn", "single-entry-no-platform"),
    # Consumers.
    (ATTESTED, "aws-lambda", None, "fail", "index-at-tag"),
    (PLAIN_INDEX, "aws-lambda", None, "fail", "index-at-tag"),
    (OCI_SINGLE, "aws-lambda", None, "pass", None),
    (DOCKER_SINGLE, "aws-lambda", None, "pass", None),
    (ATTESTED, "azure-aci", None, "fail", "attestation-entries"),
    (PLAIN_INDEX, "azure-aci", None, "pass", None),
    (ZSTD, "docker-engine@20.10", None, "fail", "zstd-layers"),
    (ZSTD, "docker-engine@23.0", None, "pass", None),
    (SCHEMA1, "docker-engine@25.0", None, "warn", "schema1"),
    (SCHEMA1, "docker-engine@26.0", None, "fail", "schema1"),
]


@pytest.mark.parametrize(
    ("doc", "spec", "target", "verdict", "rule_id"),
    [pytest.param(*b, id=f"{b[1]}-{b[4] or 'pass'}-{i}") for i, b in enumerate(BOUNDARIES)],
)
def test_boundary(doc: dict[str, Any], spec: str, target: str | None, verdict: str, rule_id: str | None) -> None:
    result = check(doc, spec, target)
    got, rules = decided(result)
    assert got == verdict, [(f.rule, f.severity, f.message) for f in result.findings]
    if rule_id is not None:
        assert rule_id in rules, rules
        finding = next(f for f in result.findings if f.rule == rule_id)
        assert finding.sources and finding.message


def test_quay_3_12_and_3_18_differ_only_in_mixed_and_nested_indexes() -> None:
    old, new = REGISTRY.resolve("quay", "3.12").settings, REGISTRY.resolve("quay", "3.18").settings
    changed = {
        r for r in old.keys() | new.keys() if (old[r].severity, old[r].params) != (new[r].severity, new[r].params)
    }
    assert changed == {"mixed-oci-index", "nested-index"}
    assert (old["mixed-oci-index"].severity, new["mixed-oci-index"].severity) == ("error", "off")


def test_notes_are_in_the_messages() -> None:
    result = check(MIXED, "quay@3.17.3")
    message = next(f.message for f in result.findings if f.rule == "mixed-oci-index")
    assert "Docker manifest" in message and "MANIFEST_INVALID" in message and "3.17.4" in message
