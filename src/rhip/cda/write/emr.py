"""WS/T 500 电子病历共享文档: 门（急）诊病历, 检验报告, 住院病案首页 and 出院小结.

Section and entry layout after the public WS/T 500 samples (repository wangk4i/LangZhongGit,
``lzihe/xml样例/CDA/``), trimmed to what the FHIR resources of the synthetic region carry.
"""

from __future__ import annotations

from collections.abc import Sequence

from rhip.cda import systems as s
from rhip.cda.fhirread import Resource, coding, day, identifier, oid, ref_id, text, ts
from rhip.cda.write.clinical import (
    LAB_REPORT_NO,
    diagnosis_entry,
    diagnosis_line,
    diagnosis_section,
    icd10,
    lab_entry,
    lab_line,
    lab_results,
    lab_section,
    medication_entry,
    medication_line,
    medication_section,
    vitals_section,
)
from rhip.cda.write.context import DocumentContext
from rhip.cda.write.header import DocumentType, document
from rhip.cda.write.markup import ICD10, cd, de, entry, obs_entry, observation, section, v_cd, v_pq, v_st

OUTPATIENT_RECORD = DocumentType("C0002", "2.16.156.10011.2.1.1.22", "门（急）诊病历", "WS/T 500.2")
LAB_REPORT = DocumentType("C0007", "2.16.156.10011.2.1.1.27", "检验报告", "WS/T 500.7")
FRONT_PAGE = DocumentType("C0032", "2.16.156.10011.2.1.1.52", "住院病案首页", "WS/T 500.32")
DISCHARGE_SUMMARY = DocumentType("C0053", "2.16.156.10011.2.1.1.73", "出院小结", "WS/T 500.53")

# 入院途径 (codeSystem 2.16.156.10011.2.3.1.270): 1 急诊 2 门诊 3 其他医疗机构转入 9 其他 (inferred, unverified).
_ADMISSION_ROUTES = {"急诊": "1", "门诊": "2", "其他医疗机构转入": "3", "转院": "3"}
# 出院情况 in words from the Condition's clinical status.
_OUTCOME = {
    "resolved": "治愈",
    "remission": "好转",
    "inactive": "好转",
    "active": "未愈",
    "recurrence": "未愈",
}


def _visit_ids(ctx: DocumentContext) -> tuple[str, ...]:
    """The visit-number kind for patientRole: 住院号 for a stay, else 门（急）诊号."""
    klass = (ctx.encounter or {}).get("class", {}).get("code")
    return ("health_card", "encounter_inpatient" if klass == "IMP" else "outpatient")


def _start(ctx: DocumentContext) -> str:
    """When the encounter began (the author time of visit documents)."""
    return ts((ctx.encounter or {}).get("period", {}).get("start"))


def _ranked(ctx: DocumentContext) -> list[Resource]:
    """The conditions with the encounter's principal diagnosis (rank 1) first."""
    ranks = {
        ref_id(d.get("condition")): d.get("rank", 99) for d in (ctx.encounter or {}).get("diagnosis", ())
    }
    return sorted(ctx.conditions, key=lambda c: ranks.get(str(c.get("id")), 99))


def _stay_days(ctx: DocumentContext) -> int | None:
    """实际住院天数: calendar days from admission to discharge (at least one)."""
    period = (ctx.encounter or {}).get("period", {})
    start, end = day(period.get("start")), day(period.get("end"))
    if start is None or end is None:
        return None
    return max(1, (end.date() - start.date()).days)


def outpatient_record(ctx: DocumentContext) -> bytes:
    """C0002 门（急）诊病历: complaint, vital signs, tests, diagnoses and prescriptions of one visit."""
    reason = ((ctx.encounter or {}).get("reasonCode") or [{}])[0]
    complaint = str(reason.get("text") or "")
    body = [
        section(
            "10154-3",
            "CHIEF COMPLAINT",
            "主诉",
            [complaint],
            [obs_entry("DE04.01.119.00", "主诉", v_st(complaint))],
        )
        if complaint
        else "",
        vitals_section(ctx.observations),
        lab_section(lab_results(ctx)),
        diagnosis_section(ctx.conditions),
        medication_section(ctx.medication_requests),
    ]
    return document(
        OUTPATIENT_RECORD,
        ctx,
        body,
        patient_ids=_visit_ids(ctx),
        author_time=_start(ctx),
        legal_role="接诊医师",
    )


def lab_report(ctx: DocumentContext) -> bytes:
    """C0007 检验报告: the report's results with units, flags and reference ranges."""
    report = ctx.diagnostic_report or {}
    results = lab_results(ctx)
    issued = ts(report.get("issued"))
    panel = text(report.get("code"))
    kind = [obs_entry("DE04.30.018.00", "检验类别", v_st(panel))] if panel else []
    summary = "；".join(lab_line(o) for o in results)
    effective = f'<effectiveTime value="{issued}"/>' if issued else ""
    report_entries = [
        obs_entry("DE04.50.130.00", "检验报告结果", v_st(summary or "无"), effective=effective),
        obs_entry("DE08.10.013.00", "检验报告机构名称", v_st(ctx.custodian.get("name", ""))),
    ]
    body = [
        diagnosis_section(ctx.conditions),
        section(
            "30954-2",
            "STUDIES SUMMARY",
            "实验室检查",
            [panel, *(lab_line(o) for o in results)],
            [*kind, *map(lab_entry, results)],
        ),
        section(None, "", "检验报告", [f"报告机构：{ctx.custodian.get('name', '')}"], report_entries),
    ]
    report_no = identifier(report, f"urn:oid:{LAB_REPORT_NO}")
    return document(
        LAB_REPORT,
        ctx,
        body,
        patient_ids=(*_visit_ids(ctx), (LAB_REPORT_NO, report_no)),
        author_time=issued,
        legal_role="审核医师",
    )


def _admission_route(ctx: DocumentContext) -> str:
    """encompassingEncounter/code: 入院途径 from the admit source."""
    source = text((ctx.encounter or {}).get("hospitalization", {}).get("admitSource"))
    if not source:
        return ""
    return cd(
        "code", _ADMISSION_ROUTES.get(source, "9"), "2.16.156.10011.2.3.1.270", "入院途径代码表", source
    )


def _discharge_entries(ctx: DocumentContext) -> tuple[list[str], list[str]]:
    """出院诊断 entries (主要诊断 then 其他诊断) and the 离院方式 entry, with narrative lines."""
    entries: list[str] = []
    lines: list[str] = []
    for index, condition in enumerate(_ranked(ctx)):
        label = "主要诊断" if index == 0 else "其他诊断"
        entries.append(diagnosis_entry(condition, label))
        lines.append(f"{label}：{diagnosis_line(condition)}")
    disposition = coding((ctx.encounter or {}).get("hospitalization", {}).get("dischargeDisposition"))
    if disposition:
        value = v_cd(
            disposition.get("code"),
            oid(disposition.get("system")),
            "离院方式代码表",
            disposition.get("display"),
        )
        entries.append(obs_entry("DE06.00.223.00", "离院方式", value))
        lines.append(f"离院方式：{disposition.get('display', disposition.get('code'))}")
    return lines, entries


def _course_entries(ctx: DocumentContext, description: str = "") -> tuple[list[str], list[str]]:
    """住院过程: 诊疗过程描述 (when given) and 实际住院天数."""
    entries, lines = [], []
    if description:
        entries.append(obs_entry("DE06.00.296.00", "诊疗过程描述", v_st(description)))
        lines.append(description)
    days = _stay_days(ctx)
    if days is not None:
        entries.append(obs_entry("DE06.00.310.00", "实际住院天数", v_pq(days, "d")))
        lines.append(f"实际住院天数：{days}天")
    return lines, entries


def front_page(ctx: DocumentContext) -> bytes:
    """C0032 住院病案首页: the stay, discharge diagnoses in ICD-10, disposition and length of stay."""
    discharge_lines, discharge = _discharge_entries(ctx)
    course_lines, course = _course_entries(ctx)
    body = [
        vitals_section(ctx.observations),
        section("11535-2", "HOSPITAL DISCHARGE DX", "出院诊断", discharge_lines, discharge)
        if discharge
        else "",
        section("8648-8", "Hospital Course", "住院过程", course_lines, course) if course else "",
    ]
    return document(
        FRONT_PAGE,
        ctx,
        body,
        patient_ids=("health_card", "encounter_inpatient", "case"),
        legal_role="科主任",
        encounter_code=_admission_route(ctx),
    )


def _admission_diagnoses(ctx: DocumentContext) -> tuple[list[str], list[str]]:
    """入院诊断 from the encounter's ICD-10 reason codes (else from the conditions)."""
    reasons = [coding(r, s.ICD10) for r in (ctx.encounter or {}).get("reasonCode", ())]
    pairs = [(r["code"], r.get("display", "")) for r in reasons if r]
    if not pairs:
        pairs = [(icd10(c).get("code"), text(c.get("code"))) for c in ctx.conditions if icd10(c)]
    entries = [
        entry(
            observation(
                de("DE05.01.024.00", "入院诊断-西医诊断编码", "入院诊断"), v_cd(code, ICD10, "ICD-10", name)
            )
        )
        for code, name in pairs
    ]
    return [f"{name}（{code}）" for code, name in pairs], entries


def _course_text(ctx: DocumentContext, requests: Sequence[Resource]) -> str:
    """A one-line 诊疗过程 built from the stay's orders."""
    if not requests:
        return "入院后完善相关检查，予对症支持治疗，病情好转。"
    drugs = "、".join(text(r.get("medicationCodeableConcept")) for r in requests)
    return f"入院后完善相关检查，予{drugs}等治疗，病情好转。"


def discharge_summary(ctx: DocumentContext) -> bytes:
    """C0053 出院小结: admission and discharge diagnoses, course, discharge orders and abnormal results."""
    admission_lines, admission = _admission_diagnoses(ctx)
    discharge_lines, discharge = _discharge_entries(ctx)
    principal = _ranked(ctx)[0] if ctx.conditions else None
    if principal is not None:
        status = (coding(principal.get("clinicalStatus")) or {}).get("code", "")
        outcome = _OUTCOME.get(str(status), "好转")
        discharge.append(obs_entry("DE06.00.193.00", "出院情况", v_st(f"{outcome}出院")))
        discharge_lines.append(f"出院情况：{outcome}出院")
    course_lines, course = _course_entries(ctx, _course_text(ctx, ctx.medication_requests))
    orders = "；".join(medication_line(r) for r in ctx.medication_requests) or "注意休息，门诊随诊。"
    results = lab_results(ctx)
    abnormal = "；".join(lab_line(o) for o in results if o.get("interpretation"))
    positive = [obs_entry("DE04.50.128.00", "阳性辅助检查结果", v_st(abnormal))] if abnormal else []
    body = [
        section("46241-6", "HOSPITAL ADMISSION DX", "入院诊断", admission_lines, admission)
        if admission
        else "",
        section("11535-2", "HOSPITAL DISCHARGE DX", "出院诊断", discharge_lines, discharge)
        if discharge
        else "",
        section("8648-8", "Hospital Course", "住院过程", course_lines, course),
        section(
            "46209-3",
            "Provider Orders",
            "出院医嘱",
            [orders],
            [
                obs_entry("DE06.00.287.00", "出院医嘱", v_st(orders)),
                *(medication_entry(r) for r in ctx.medication_requests),
            ],
        ),
        lab_section(results, positive),
    ]
    return document(
        DISCHARGE_SUMMARY,
        ctx,
        body,
        patient_ids=("health_card", "encounter_inpatient"),
        legal_role="住院医师",
    )
