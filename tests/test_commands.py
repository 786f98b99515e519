"""The knowledge-base commands through typer's CliRunner: rules, explain, profiles, profiles show, policy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner, Result

from gate import manifest as mf
from gate.cli import app
from gate.errors import EXIT_USAGE
from gate.policy import Registry, builtin_dir, version_matches
from gate.rules import catalog
from gate.rules.examples import materialize

ROOT = Path(__file__).resolve().parent.parent
RULES = sorted(catalog())


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr == ""
    return result.stdout


def ok_json(*args: str) -> Any:
    return json.loads(ok(*args, "--format", "json"))


def usage_error(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == EXIT_USAGE, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    return result.stderr


# --- rules ----------------------------------------------------------------------------------------------------------


def test_rules_table_lists_every_rule_once() -> None:
    lines = ok("rules").splitlines()
    assert lines[0].split() == ["RULE", "FAMILY", "SEVERITY", "SUMMARY"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert sorted(rows) == RULES and len(lines) == len(RULES) + 1
    for rule_id, rule in catalog().items():
        assert rows[rule_id].split()[1:3] == [rule.family, rule.severity]
        assert rows[rule_id].endswith(rule.summary)


def test_rules_json_matches_the_catalog() -> None:
    doc = ok_json("rules")
    assert doc["schema"] == "registry-gate/rules/v1"
    by_id = {r["id"]: r for r in doc["rules"]}
    assert sorted(by_id) == RULES
    for rule_id, rule in catalog().items():
        assert by_id[rule_id] == {
            "id": rule_id,
            "family": rule.family,
            "severity": rule.severity,
            "summary": rule.summary,
            "params": dict(rule.params),
            "fix": rule.fix,
            "sources": list(rule.sources),
        }


def test_unknown_format_is_a_usage_error() -> None:
    assert usage_error("rules", "--format", "xml") == (
        "registry-gate: error: --format 'xml' is not one of text, json; pick one of them\n"
    )


# --- explain --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", RULES)
def test_explain_text_for_every_rule(rule_id: str) -> None:
    rule = catalog()[rule_id]
    out = ok("explain", rule_id)
    assert out.startswith(f"{rule_id}: {rule.summary}\nfamily: {rule.family}    default severity: {rule.severity}\n")
    for kind, example in (("passing", rule.passing), ("failing", rule.failing)):
        assert example is not None
        top, children, _ = materialize(example)
        target = f"  target {example['target']}\n" if "target" in example else ""
        assert f"{kind} example:\n{target}  top {mf.digest_of(top)} ({len(top)} bytes):\n" in out
        for digest in children:
            assert f" {digest} ({len(children[digest])} bytes):\n" in out
    assert f"  {rule_id} reports: nothing\n\nfailing example:" in out
    failing = out.split("failing example:")[1]
    assert f"  {rule_id} reports: " in failing and f"  {rule_id} reports: nothing" not in failing
    assert f"\nfix: {rule.fix}\n" in out
    for source in rule.sources:
        assert f"\n  {source}\n" in out
    listed = [line.split()[0] for line in out.split("\nprofiles:\n")[1].splitlines()]
    assert listed == sorted(Registry().profiles)


@pytest.mark.parametrize("rule_id", RULES)
def test_explain_json_for_every_rule(rule_id: str) -> None:
    rule = catalog()[rule_id]
    doc = ok_json("explain", rule_id)
    assert (doc["id"], doc["family"], doc["severity"], doc["summary"]) == (
        rule_id,
        rule.family,
        rule.severity,
        rule.summary,
    )
    assert doc["params"] == dict(rule.params) and doc["sources"] == list(rule.sources) and doc["fix"] == rule.fix
    assert doc["examples"]["passing"]["findings"] == []
    assert doc["examples"]["failing"]["findings"] != []
    for kind in ("passing", "failing"):
        example = getattr(rule, kind)
        top, children, blobs = materialize(example)
        part = doc["examples"][kind]
        assert part["top"] == {"digest": mf.digest_of(top), "size": len(top), "document": json.loads(top)}
        assert sorted(c["digest"] for c in part["children"].values()) == sorted(children)
        assert set(part["children"]) == set(example.get("children", {}))
        assert part["blobs"] == {d: b.decode() for d, b in blobs.items()}
        assert part["target"] == example.get("target")
    registry = Registry()
    for usage in doc["profiles"]:
        name = usage["profile"]
        versions = list(dict.fromkeys([registry.default_version(name), *registry.known_versions(name)]))
        for severity, group in usage["severity"].items():
            for version in group["versions"] or [None]:
                assert version in versions
                setting = registry.resolve(name, version).settings.get(rule_id)
                assert (setting.severity if setting else "off") == severity


def test_explain_shows_version_dependent_severity() -> None:
    out = ok("explain", "mixed-oci-index")
    line = next(x for x in out.splitlines() if x.startswith("  quay "))
    quay = yaml.safe_load((builtin_dir() / "quay.yaml").read_text())["rules"]["mixed-oci-index"]
    assert quay[0]["severity"] == "error" and quay[-1]["severity"] == "off"
    assert "error at saas, " in line and "; off at " in line and "3.18" in line.split("; off at ")[1]


def test_explain_unknown_rule_suggests_the_nearest() -> None:
    assert usage_error("explain", "mixed-oci-indx") == (
        "registry-gate: error: unknown rule 'mixed-oci-indx' (did you mean 'mixed-oci-index'?); "
        "`registry-gate rules` lists them\n"
    )


# --- profiles -------------------------------------------------------------------------------------------------------


def test_profiles_lists_builtins_with_versions_and_hosts() -> None:
    lines = ok("profiles").splitlines()
    assert lines[0].split() == ["PROFILE", "KIND", "HOSTS", "DEFAULT", "KNOWN", "EXTENDS", "SUMMARY"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    registry = Registry()
    assert sorted(rows) == sorted(registry.profiles)
    for name, p in registry.profiles.items():
        hosts, known = list(p.hosts), list(registry.known_versions(name))
        assert rows[name][1:6] == [
            p.kind,
            hosts[0] + (f"+{len(hosts) - 1}" if len(hosts) > 1 else "") if hosts else "-",
            registry.default_version(name) or "-",
            f"{known[0]}..{known[-1]}" if len(known) > 1 else (known[0] if known else "-"),
            p.extends or "-",
        ]


def test_profiles_json_includes_user_profiles(tmp_path: Path) -> None:
    path = tmp_path / "corp.yaml"
    path.write_text("name: corp\nsummary: our mirror\nextends: quay\nhosts: [quay.corp.example]\n")
    doc = ok_json("profiles", "--policy", str(path))
    corp = next(p for p in doc["profiles"] if p["name"] == "corp")
    assert corp == {
        "name": "corp",
        "kind": "registry",
        "hosts": ["quay.corp.example"],
        "default_version": "saas",
        "known_versions": list(Registry().known_versions("quay")),
        "extends": "quay",
        "summary": "our mirror",
        "file": str(path),
        "builtin": False,
    }
    quay = next(p for p in doc["profiles"] if p["name"] == "quay")
    assert quay["builtin"] is True and quay["file"] == "policies/quay.yaml"


def _expected_severities(profile: str, version: str) -> dict[str, str]:
    """What the profile's own file says for `version`, over what its parent resolves to (read from the YAML)."""
    data = yaml.safe_load((builtin_dir() / f"{profile}.yaml").read_text())
    parent = {r["id"]: r["severity"] for r in ok_json("profiles", "show", data["extends"])["rules"]}
    for rule_id, value in data.get("rules", {}).items():
        variants = value if isinstance(value, list) else [value]
        for v in variants:
            when = v.get("when")
            if when is None or version_matches(version, [when] if isinstance(when, str) else when):
                parent[rule_id] = v.get("severity", parent[rule_id])
                break
    return parent


def test_quay_312_and_318_differ_as_quay_yaml_says() -> None:
    a = {r["id"]: r["severity"] for r in ok_json("profiles", "show", "quay@3.12")["rules"]}
    b = {r["id"]: r["severity"] for r in ok_json("profiles", "show", "quay@3.18")["rules"]}
    assert a == _expected_severities("quay", "3.12")
    assert b == _expected_severities("quay", "3.18")
    changed = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert changed["mixed-oci-index"] == ("error", "off")
    assert changed == {
        k: (v, _expected_severities("quay", "3.18")[k])
        for k, v in _expected_severities("quay", "3.12").items()
        if v != _expected_severities("quay", "3.18")[k]
    }
    text_12, text_18 = ok("profiles", "show", "quay@3.12"), ok("profiles", "show", "quay@3.18")
    assert "\nmixed-oci-index: error [S]  (policies/quay.yaml:" in text_12
    assert "\nmixed-oci-index: off [S]  (policies/quay.yaml:" in text_18


def _specs() -> list[str]:
    registry = Registry()
    return sorted(
        {n for n in registry.profiles} | {f"{n}@{v}" for n in registry.profiles for v in registry.known_versions(n)}
    )


@pytest.mark.parametrize("spec", _specs())
def test_profile_show_origins_point_at_the_lines_that_set_them(spec: str) -> None:
    doc = ok_json("profiles", "show", spec)
    assert {r["id"] for r in doc["rules"]} == set(RULES)
    for r in doc["rules"]:
        if not r["listed"]:
            assert r["severity"] == "off" and r["from"] == {}
            continue
        for key, origin in r["from"].items():
            if origin.endswith("rule default"):
                assert origin == f"gate/rules/{catalog()[r['id']].family}.py, rule default"
                continue
            file, line = origin.rsplit(":", 1)
            text = (ROOT / file).read_text().splitlines()[int(line) - 1]
            assert key.split(".")[-1] + ":" in text, (r["id"], key, origin, text)


def test_profile_show_text_lists_every_rule_with_origin_and_off_rules() -> None:
    out = ok("profiles", "show", "distribution")
    registry = Registry()
    default, known = registry.default_version("distribution"), registry.known_versions("distribution")
    assert out.startswith(
        f"profile: distribution@{default} (default version)\nfile: policies/distribution.yaml\nextends: oci\n"
        f"versions: default {default}; known {', '.join(known)}\n"
    )
    doc = ok_json("profiles", "show", "distribution")
    for r in doc["rules"]:
        where = r["from"].get("severity", "not listed in the profile or its parents")
        evidence = f" [{r['evidence']}]" if r["evidence"] else ""
        assert f"\n{r['id']}: {r['severity']}{evidence}  ({where})\n" in out
    assert "\nmixed-oci-index: off [S]  (policies/distribution.yaml:" in out
    for r in doc["rules"]:
        for k, v in r["params"].items() if r["listed"] else ():
            assert f"    param {k} = {json.dumps(v)}  (" in out


def test_profile_show_user_profile_and_unknown_version(tmp_path: Path) -> None:
    path = tmp_path / "lax.yaml"
    path.write_text("name: lax\nextends: quay\nrules:\n  mixed-oci-index:\n    severity: warning\n")
    doc = ok_json("profiles", "show", "lax@3.99", "--policy", str(path))
    assert doc["chain"] == ["lax", "quay", "oci"] and doc["version"] == "3.99" and not doc["version_is_default"]
    assert doc["notices"] == [
        f"lax@3.99: not a known version of lax ({', '.join(Registry().known_versions('quay'))}); "
        "version conditions are applied to it as written"
    ]
    mixed = next(r for r in doc["rules"] if r["id"] == "mixed-oci-index")
    assert mixed["severity"] == "warning" and mixed["from"]["severity"] == f"{path}:5"


def test_profile_show_unknown_profile_suggests() -> None:
    assert usage_error("profiles", "show", "quya@3.12") == (
        "registry-gate: error: unknown profile 'quya' (did you mean 'quay'?); "
        "`registry-gate profiles` lists them; --policy FILE adds your own\n"
    )
    assert "'latest' is not a version" in usage_error("profiles", "show", "quay@latest")


# --- policy validate / schema ---------------------------------------------------------------------------------------


def test_policy_validate_accepts_the_builtins_as_user_files(tmp_path: Path) -> None:
    copies = []
    for path in sorted(builtin_dir().glob("*.yaml")):
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace(f"name: {path.stem}\n", f"name: my-{path.stem}\n"))
        copy.write_text(copy.read_text().replace("extends: oci\n", "extends: my-oci\n"))
        copies.append(str(copy))
    assert ok("policy", "validate", *copies) == "".join(f"{c}: ok\n" for c in copies)


def test_policy_validate_checks_the_builtin_files_themselves() -> None:
    files = [str(p) for p in sorted(builtin_dir().glob("*.yaml"))]
    assert ok("policy", "validate", *files) == "".join(f"{f}: ok\n" for f in files)


def test_policy_validate_reports_each_bad_file_and_exits_2(tmp_path: Path) -> None:
    good, typo, unknown = tmp_path / "good.yaml", tmp_path / "typo.yaml", tmp_path / "unknown.yaml"
    good.write_text("name: good\nextends: quay\nrules:\n  nested-index: {severity: warning}\n")
    typo.write_text("name: typo\nextends: quay\nrules:\n  mixed-oci-index:\n    servity: error\n")
    unknown.write_text("name: unknown\nrules:\n  nested-indx: {severity: error}\n")
    result = run("policy", "validate", str(good), str(typo), str(unknown))
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == f"{good}: ok\n"
    assert result.stderr == (
        f"{typo}:5: unknown key 'servity' in rule 'mixed-oci-index' (did you mean 'severity'?)\n"
        f"{unknown}:3: unknown rule 'nested-indx' (did you mean 'nested-index'?); `registry-gate rules` lists them\n"
    )


def test_policy_validate_warns_but_passes_on_unreachable_when(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: w\nextends: quay\nrules:\n  nested-index:\n    - when: '3.99'\n      severity: error\n")
    result = run("policy", "validate", str(path))
    assert result.exit_code == 0
    assert result.stdout == f"{path}: ok\n"
    assert result.stderr.startswith(f"{path}:5: warning: nested-index.when '3.99' matches none of the known versions")


def test_policy_validate_needs_a_file() -> None:
    assert run("policy", "validate").exit_code == EXIT_USAGE
    assert "cannot read policy" in run("policy", "validate", "/nonexistent.yaml").stderr


def test_policy_schema_is_json_and_validates_user_files(tmp_path: Path) -> None:
    doc = json.loads(ok("policy", "schema"))
    jsonschema.Draft202012Validator.check_schema(doc)
    user = {"name": "corp", "extends": "quay", "rules": {"nested-index": {"params": {"max_depth": 2}}}}
    jsonschema.validate(user, doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "corp", "rules": {"nested-index": {"servity": "error"}}}, doc)


def test_commands_import_nothing_heavy_at_start_up() -> None:
    code = "import sys, gate.cli; print(sorted(m for m in ('yaml', 'gate.policy', 'gate.rules') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_readme_policy_examples_validate(tmp_path: Path) -> None:
    """Every YAML block in the README that is a policy (top-level `name:` and `rules:`) validates."""
    blocks = [b.split("```", 1)[0] for b in (ROOT / "README.md").read_text().split("```yaml\n")[1:]]
    policies = [b for b in blocks if re.search(r"^name: ", b, re.M) and re.search(r"^rules:", b, re.M)]
    assert policies, "the README shows no policy"
    schema = json.loads(ok("policy", "schema"))
    for i, block in enumerate(policies):
        path = tmp_path / f"readme-{i}.yaml"
        path.write_text(block)
        assert ok("policy", "validate", str(path)) == f"{path}: ok\n"
        jsonschema.validate(yaml.safe_load(block), schema)
        name = yaml.safe_load(block)["name"]
        doc = ok_json("profiles", "show", name, "--policy", str(path))
        assert doc["chain"][0] == name and doc["chain"][-1] == "oci"
