"""C0006 检查报告 (WS/T 500.6): an examination report (imaging, ultrasound, ECG, endoscopy …) from a DiagnosticReport.

Layout after the public WS/T 500 C0006 templates (repository bzrrr/cda and the LangZhongGit sample):
the report and order numbers in patientRole, the reviewing physician as legal authenticator, then the
diagnosis, chief complaint, the examination items with their results, and the 检查报告 section with the
findings (客观所见) and the impression (主观提示). Data elements: DE04.30.018.00 检查类别,
DE02.10.027.00 检查方法名称, DE04.30.019.00 检查项目代码, DE04.30.017.00 检查结果代码, DE04.30.015.00 检查定量结果,
DE04.50.131.00 检查报告结果-客观所见, DE08.10.026.00 检查报告科室, DE08.10.013.00 检查报告机构名称 (from those
templates); DE04.50.132.00 检查报告结果-主观提示 is *inferred* (the templates repeat .131 for it).
"""

from __future__ import annotations

from collections.abc import Sequence

from rhip.cda import systems as s
from rhip.cda.errors import DocumentContentMissing
from rhip.cda.fhirread import Resource, coding, identifier, oid, text, ts
from rhip.cda.write.clinical import department_name, diagnosis_section, lab_line
from rhip.cda.write.context import DocumentContext
from rhip.cda.write.header import DocumentType, document
from rhip.cda.write.markup import (
    INTERPRETATION,
    LOINC,
    cd,
    component_of,
    de,
    entry,
    obs_entry,
    observation,
    organizer,
    section,
    v_cd,
    v_pq,
    v_st,
)

EXAM_REPORT = DocumentType("C0006", "2.16.156.10011.2.1.1.26", "检查报告", "WS/T 500.6")
EXAM_REPORT_NO = "2.16.156.10011.1.32"  # 检查报告单号
ORDER_NO = "2.16.156.10011.1.24"  # 电子申请单编号


def _results(ctx: DocumentContext) -> list[Resource]:
    """The report's result Observations (those it references), in the report's order."""
    report = ctx.diagnostic_report or {}
    by_id = {str(o.get("id")): o for o in ctx.observations}
    wanted = [r.get("reference", "").rpartition("/")[2] for r in report.get("result", ())]
    return [by_id[i] for i in wanted if i in by_id]


def _finding(obs: Resource) -> str:
    """A result in words without its name (a finding text, a coded result or a quantity)."""
    if obs.get("valueString"):
        return str(obs["valueString"])
    line = lab_line(obs)
    name = text(obs.get("code"))
    return line[len(name) :].strip() if line.startswith(name) else line


def _item_entry(obs: Resource) -> str:
    """One examined item: 检查项目代码 and its result (quantity, coded result or the finding text)."""
    code = coding(obs.get("code"), s.LOINC) or coding(obs.get("code")) or {}
    is_loinc = code.get("system") == s.LOINC
    when = ts(obs.get("effectiveDateTime"))
    item = observation(
        de("DE04.30.019.00", "检查项目代码"),
        v_cd(
            code.get("code"),
            LOINC if is_loinc else oid(code.get("system")),
            "LOINC" if is_loinc else None,
            text(obs.get("code")),
        ),
        effective=f'<effectiveTime value="{when}"/>' if when else "",
    )
    flag = (coding((obs.get("interpretation") or [{}])[0]) or {}).get("code")
    interpretation = (
        cd("interpretationCode", flag, INTERPRETATION, "ObservationInterpretation") if flag else ""
    )
    quantity = obs.get("valueQuantity")
    concept = obs.get("valueCodeableConcept")
    if quantity and quantity.get("value") is not None:
        printed = str(quantity.get("unit") or "")
        unit = "".join(str(quantity.get("code") or printed).split()) or "1"
        unit_obs = observation(de("DE04.30.016.00", "检查定量结果计量单位"), v_st(printed)) if printed else ""
        result = observation(
            de("DE04.30.015.00", "检查定量结果"),
            v_pq(quantity["value"], unit),
            interpretation=interpretation,
            relationships=[component_of(unit_obs)] if unit_obs else (),
        )
    elif coding(concept):
        coded = coding(concept) or {}
        result = observation(
            de("DE04.30.017.00", "检查结果代码"),
            v_cd(coded.get("code"), oid(coded.get("system")), None, text(concept)),
            interpretation=interpretation,
        )
    else:
        result = observation(
            de("DE04.50.131.00", "检查报告结果-客观所见"), v_st(_finding(obs)), interpretation=interpretation
        )
    return entry(organizer([item, result]))


def _items_section(report: Resource, results: Sequence[Resource]) -> str:
    """检查项目 (LOINC 29545-1, as the templates code it): kind, method and each item with its result."""
    kind = " ".join(text(c) for c in report.get("category", ()) if text(c))
    method = text(report.get("code"))
    entries = []
    if kind:
        entries.append(obs_entry("DE04.30.018.00", "检查类别", v_st(kind)))
    if method:
        entries.append(obs_entry("DE02.10.027.00", "检查方法名称", v_st(method)))
    entries.extend(_item_entry(o) for o in results)
    lines = [f"检查类别：{kind}" if kind else "", f"检查方法：{method}" if method else ""]
    lines.extend(f"{text(o.get('code'))}：{_finding(o)}" for o in results)
    return section("29545-1", "PHYSICAL EXAMINATION", "检查项目", lines, entries) if entries else ""


def _report_section(ctx: DocumentContext, report: Resource, results: Sequence[Resource]) -> str:
    """检查报告: findings (客观所见), impression (主观提示), reporting department and institution."""
    findings = "；".join(f"{text(o.get('code'))}：{_finding(o)}" for o in results) or "无"
    impression = str(report.get("conclusion") or "") or "；".join(
        text(c) for c in report.get("conclusionCode", ())
    )
    department = department_name(ctx.encounter)
    issued = ts(report.get("issued"))
    entries = [
        obs_entry(
            "DE04.50.131.00",
            "检查报告结果-客观所见",
            v_st(findings),
            effective=f'<effectiveTime value="{issued}"/>' if issued else "",
        )
    ]
    lines = [f"检查所见：{findings}"]
    if impression:
        entries.append(obs_entry("DE04.50.132.00", "检查报告结果-主观提示", v_st(impression)))
        lines.append(f"检查提示：{impression}")
    if department:
        entries.append(obs_entry("DE08.10.026.00", "检查报告科室", v_st(department)))
        lines.append(f"报告科室：{department}")
    entries.append(obs_entry("DE08.10.013.00", "检查报告机构名称", v_st(ctx.custodian.get("name", ""))))
    lines.append(f"报告机构：{ctx.custodian.get('name', '')}")
    return section(None, "", "检查报告", lines, entries)


def _order_number(ctx: DocumentContext) -> str | None:
    """电子申请单编号: the first order's identifier (or requisition) in 2.16.156.10011.1.24."""
    system = f"urn:oid:{ORDER_NO}"
    for request in ctx.service_requests:
        found = identifier(request, system) or (
            request.get("requisition", {}).get("value")
            if request.get("requisition", {}).get("system") == system
            else None
        )
        if found:
            return str(found)
    return None


def exam_report(ctx: DocumentContext) -> bytes:
    """C0006 检查报告: the examination, its items and results, the findings and the impression."""
    report = ctx.diagnostic_report
    if report is None:
        raise DocumentContentMissing("an examination report needs DocumentContext.diagnostic_report")
    results = _results(ctx)
    reason = "；".join(
        str(r.get("text")) for r in (ctx.encounter or {}).get("reasonCode", ()) if r.get("text")
    )
    body = [
        diagnosis_section(ctx.conditions),
        section(
            "10154-3",
            "CHIEF COMPLAINT",
            "主诉",
            [reason],
            [obs_entry("DE04.01.119.00", "主诉", v_st(reason))],
        )
        if reason
        else "",
        _items_section(report, results),
        _report_section(ctx, report, results),
    ]
    klass = (ctx.encounter or {}).get("class", {}).get("code")
    ids = (
        "encounter_inpatient" if klass == "IMP" else "outpatient",
        (EXAM_REPORT_NO, identifier(report, f"urn:oid:{EXAM_REPORT_NO}")),
        (ORDER_NO, _order_number(ctx)),
    )
    return document(
        EXAM_REPORT,
        ctx,
        body,
        patient_ids=ids,
        author_time=ts(report.get("issued")),
        legal_role="审核医师",
    )
