"""`--format junit`: JUnit XML for CI test dashboards: a test suite per target, a test case per rule that ran.

A case fails when the rule has findings that fail the gate (errors, or warnings with --fail-on warning); a case
whose findings are all waived is skipped with the waiver's reason; other findings go to system-out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gate.engine import Finding, Result
from gate.report import Report


def _describe(f: Finding) -> str:
    lines = [f"{f.severity}: {f.path or '(top)'}: {f.message}"]
    if f.digest:
        lines.append(f"  entry: {f.digest} {f.platform or ''}".rstrip())
    if f.fix:
        lines.append(f"  fix: {f.fix}")
    lines += [f"  see: {s}" for s in f.sources]
    return "\n".join(lines)


def _suite(report: Report, result: Result) -> ET.Element:
    name = result.target.text or f"profile {result.effective.label}"
    counted = {"error", "warning"} if report.fail_on == "warning" else {"error"}
    rule_ids = [s.rule.id for s in result.effective.active()]
    rule_ids += [f.rule for f in result.findings if f.rule not in rule_ids]
    suite = ET.Element("testsuite", name=f"{name} [{result.effective.label}]")
    failures = skipped = 0
    for rule_id in rule_ids:
        case = ET.SubElement(suite, "testcase", classname=name, name=rule_id)
        found = [f for f in result.findings if f.rule == rule_id]
        failing = [f for f in found if f.waived is None and f.severity in counted]
        waived = [f for f in found if f.waived is not None]
        if failing:
            failures += 1
            failure = ET.SubElement(case, "failure", type=failing[0].severity, message=failing[0].message)
            failure.text = "\n".join(_describe(f) for f in failing)
        elif waived and len(waived) == len(found):
            skipped += 1
            w = waived[0].waived
            assert w is not None
            ET.SubElement(case, "skipped", message=f"waived: {w.reason} (until {w.expires})")
        if found and not failing:
            ET.SubElement(case, "system-out").text = "\n".join(_describe(f) for f in found)
    suite.set("tests", str(len(rule_ids)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return suite


def render(report: Report) -> str:
    root = ET.Element("testsuites", name=f"registry-gate {report.source}")
    suites = [_suite(report, r) for r in report.results]
    root.extend(suites)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
