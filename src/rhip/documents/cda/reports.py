"""WS/T 500 reports: C0007 检验报告 and C0006 检查报告, each a DiagnosticReport over its result Observations."""

from __future__ import annotations

from typing import Any

from rhip.documents.cda.body import read_body
from rhip.documents.cda.context import Extraction, Resource
from rhip.documents.cda.identity import full_url
from rhip.documents.cda.observations import category as observation_category
from rhip.documents.cda.statements import element_id, label, statement, value_of
from rhip.documents.cda.values import string
from rhip.documents.cda.xmlpath import Element, child

LAB_REPORT_NO = "urn:oid:2.16.156.10011.1.33"  # 检验报告单号
EXAM_REPORT_NO = "urn:oid:2.16.156.10011.1.32"  # 检查报告单号
RESULT_KIND = "DE04.30.018.00"  # 检验类别 / 检查类别
EXAM_METHOD = "DE02.10.027.00"  # 检查方法名称
LAB_SUMMARY = "DE04.50.130.00"  # 检验报告结果
FINDINGS = "DE04.50.131.00"  # 检查报告结果-客观所见
IMPRESSION = "DE04.50.132.00"  # 检查报告结果-主观提示
_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"


def _observations(x: Extraction, *elements: str) -> list[tuple[Element, Element]]:
    """(entry, observation) of the entries coded with one of the data elements, in document order."""
    out = []
    for section in x.sections():
        for entry in section.entries():
            obs = statement(entry)
            if obs is not None and element_id(obs) in elements:
                out.append((entry, obs))
    return out


def _report_numbers(x: Extraction, system: str) -> list[dict[str, str]]:
    return [{"system": s, "value": v} for s, v in x.doc.header.record_ids if s == system]


def lab_report(x: Extraction) -> None:
    """C0007: diagnoses, the results, and a laboratory DiagnosticReport over them (issued when signed)."""
    summary = _observations(x, LAB_SUMMARY)
    issued = x.time(child(summary[0][1], "effectiveTime")) if summary else None
    issued = issued or x.doc.header.author.time
    body = read_body(x, issued=issued)
    kinds = _observations(x, RESULT_KIND)
    name = string(value_of(kinds[0][1])) if kinds else ""
    anchor = (summary or kinds or [(None, None)])[0][0]
    _report(
        x, anchor, body.results, "LAB", name or x.doc.header.title, issued, _report_numbers(x, LAB_REPORT_NO)
    )


def exam_report(x: Extraction) -> None:
    """C0006: diagnoses, procedures, measured items, and an imaging DiagnosticReport with findings and impression."""
    issued = x.doc.header.author.time or x.doc.header.effective_time
    body = read_body(x, issued=issued, result_kind="imaging")
    results = list(body.results)
    findings = _observations(x, FINDINGS)
    for entry, obs in findings:
        text_value = string(value_of(obs))
        if text_value:
            results.append(
                x.add(
                    x.new(
                        "Observation",
                        entry,
                        status="final",
                        category=observation_category("imaging"),
                        code={"text": label(obs) or "检查报告结果-客观所见"},
                        valueString=text_value,
                        effectiveDateTime=issued,
                        issued=issued if issued and len(issued) > 10 else None,
                        performer=x.organization(),
                    )
                )
            )
    impressions = [string(value_of(o)) for _, o in _observations(x, IMPRESSION)]
    kinds = [string(value_of(o)) for _, o in _observations(x, EXAM_METHOD, RESULT_KIND)]
    name = next((k for k in kinds if k), "") or x.doc.header.title
    anchor = (findings or _observations(x, IMPRESSION) or [(None, None)])[0][0]
    report = _report(x, anchor, results, "RAD", name, issued, _report_numbers(x, EXAM_REPORT_NO))
    conclusion = "；".join(i for i in impressions if i)
    if conclusion:
        report["conclusion"] = conclusion


def _report(
    x: Extraction, anchor: Element | None, results: list[Resource], service: str, name: str,
    issued: str | None, numbers: list[dict[str, str]],
) -> Resource:  # fmt: skip
    """The DiagnosticReport: service category, name, times, performer, report number and results."""
    body = x.doc.body
    source = anchor if anchor is not None else body if body is not None else x.doc.root
    times = [r["effectiveDateTime"] for r in results if r.get("effectiveDateTime")]
    fields: dict[str, Any] = {
        "status": "final",
        "category": [{"coding": [{"system": _SERVICE, "code": service}]}],
        "code": {"text": name},
        "effectiveDateTime": times[0] if times else None,
        "issued": issued if issued and len(issued) > 10 else None,
        "performer": x.organization(),
        "result": [{"reference": full_url(r)} for r in results],
    }
    report = x.new("DiagnosticReport", source, **fields)
    if source is body or source is x.doc.root:
        report["identifier"][0]["value"] = "DiagnosticReport"
    report["identifier"].extend(numbers)
    return x.add(report)
