"""Person-level documents: C0001 病历概要 (WS/T 500.1) and HSDA00.01 个人基本健康信息登记 (WS/T 483.1).

C0001 follows the public WS/T 500 sample (repository wangk4i/LangZhongGit, ``C001病历概要.xml``): contacts in a
header participant, then blood type, past history, allergies, immunizations, family history and the
卫生事件 section about the visit (department, patient type, visit numbers, admission and discharge times,
reason, diagnoses, operations, key drugs, responsible physician). No public HSDA00.01 sample exists: it
carries the content of the 2009 个人信息基本数据集 (HRA00.01, cn-standards.md §3.6) that FHIR holds — the
demographics in the header, contacts, blood type, allergies, illnesses and operations, family history —
in the same section layout as C0001.
"""

from __future__ import annotations

from rhip.cda import systems as s
from rhip.cda.fhirread import Resource, person_name, ref_id, text, ts
from rhip.cda.write.clinical import department_name, diagnosis_entry, diagnosis_line, medication_line
from rhip.cda.write.context import DocumentContext
from rhip.cda.write.header import DocumentType, document
from rhip.cda.write.history import (
    allergy_section,
    blood_type_section,
    family_history_section,
    immunization_history_section,
    past_history_section,
    procedure_entry,
    procedure_line,
)
from rhip.cda.write.markup import (
    component_of,
    de,
    entry,
    obs_entry,
    observation,
    organizer,
    section,
    v_cd,
    v_st,
    v_ts,
)

MEDICAL_SUMMARY = DocumentType("C0001", "2.16.156.10011.2.1.1.21", "病历概要", "WS/T 500.1")
PERSONAL_HEALTH_RECORD = DocumentType(
    "HSDA00.01", "2.16.156.10011.2.1.1.1", "个人基本健康信息登记", "WS/T 483.1"
)

PATIENT_TYPE_SYSTEM = "2.16.156.10011.2.3.1.271"  # CV09.00.404 患者类型代码表
# Patient type by FHIR encounter class: 3 住院 is in the C0001 sample; 1 门诊 and 2 急诊 are unverified.
_PATIENT_TYPES = {"AMB": ("1", "门诊"), "EMER": ("2", "急诊"), "IMP": ("3", "住院"), "HH": ("1", "门诊")}
_RECORD_IDS = ("health_record", "health_card")


def _of_this_visit(ctx: DocumentContext) -> tuple[list[Resource], list[Resource]]:
    """The conditions split into this visit's diagnoses and the rest (the past history)."""
    enc = ctx.encounter or {}
    visit_id = str(enc.get("id", ""))
    listed = {ref_id(d.get("condition")) for d in enc.get("diagnosis", ())}
    now: list[Resource] = []
    before: list[Resource] = []
    for condition in ctx.conditions:
        here = visit_id and (ref_id(condition.get("encounter")) == visit_id or condition.get("id") in listed)
        (now if here else before).append(condition)
    return now, before


def _visit_numbers(enc: Resource) -> tuple[list[str], list[str]]:
    """门（急）诊号 and 住院号 entries with their narrative lines."""
    entries, lines = [], []
    for system, element, label in (
        (s.OUTPATIENT_NO, "DE01.00.010.00", "门（急）诊号"),
        (s.INPATIENT_NO, "DE01.00.014.00", "住院号"),
    ):
        value = next((i.get("value") for i in enc.get("identifier", ()) if i.get("system") == system), None)
        if value:
            entries.append(obs_entry(element, label, v_st(value)))
            lines.append(f"{label}：{value}")
    return entries, lines


def _key_drug(request: Resource) -> str:
    """关键药物名称 with its 关键药物用法 (DE08.50.022.00, DE06.00.136.00)."""
    dosage = (request.get("dosageInstruction") or [{}])[0]
    usage = (
        [component_of(observation(de("DE06.00.136.00", "关键药物用法"), v_st(dosage["text"])))]
        if dosage.get("text")
        else []
    )
    name = text(request.get("medicationCodeableConcept"))
    return entry(observation(de("DE08.50.022.00", "关键药物名称"), v_st(name), relationships=usage))


def _health_event(ctx: DocumentContext, diagnoses: list[Resource]) -> str:
    """卫生事件: the visit the summary is about, or nothing without an encounter."""
    enc = ctx.encounter
    if enc is None:
        return ""
    entries: list[str] = []
    lines: list[str] = []
    department = department_name(enc)
    if department:
        entries.append(obs_entry("DE08.10.026.00", "医疗机构科室名称", v_st(department)))
        lines.append(f"科室：{department}")
    klass = enc.get("class", {}).get("code", "")
    if klass in _PATIENT_TYPES:
        code, name = _PATIENT_TYPES[klass]
        entries.append(
            obs_entry(
                "DE02.01.060.00", "患者类型代码", v_cd(code, PATIENT_TYPE_SYSTEM, "患者类型代码表", name)
            )
        )
        lines.append(f"患者类型：{name}")
    numbers, number_lines = _visit_numbers(enc)
    entries += numbers
    lines += number_lines
    period = enc.get("period", {})
    start, end = ts(period.get("start")), ts(period.get("end"))
    if klass == "IMP" and (start or end):
        stay = [
            observation(de(element, label), v_ts(value))
            for element, label, value in (
                ("DE06.00.092.00", "入院时间", start),
                ("DE06.00.017.00", "出院时间", end),
            )
            if value
        ]
        entries.append(entry(organizer(stay, class_code="BATTERY")))
        lines.append(
            f"入院时间：{period.get('start', '')[:16]}  出院时间：{period.get('end', '')[:16]}".rstrip()
        )
    reason = "；".join(text(r) for r in enc.get("reasonCode", ()) if text(r))
    if reason:
        effective = f'<effectiveTime value="{start}"/>' if start else ""
        entries.append(obs_entry("DE05.10.053.00", "就诊原因", v_st(reason), effective=effective))
        lines.append(f"就诊原因：{reason}")
    entries.extend(diagnosis_entry(c) for c in diagnoses)
    lines.extend(f"诊断：{diagnosis_line(c)}" for c in diagnoses)
    entries.extend(procedure_entry(p) for p in ctx.procedures)
    lines.extend(f"手术（操作）：{procedure_line(p)}" for p in ctx.procedures)
    entries.extend(_key_drug(r) for r in ctx.medication_requests)
    lines.extend(f"用药：{medication_line(r)}" for r in ctx.medication_requests)
    doctor = person_name(ctx.author)
    if doctor:
        entries.append(obs_entry("DE02.01.039.00", "责任医师姓名", v_st(doctor)))
        lines.append(f"责任医师：{doctor}")
    return section(None, "", "卫生事件", lines, entries)


def medical_summary(ctx: DocumentContext) -> bytes:
    """C0001 病历概要: the person's history and the visit it summarises."""
    diagnoses, past = _of_this_visit(ctx)
    body = [
        blood_type_section(ctx.observations),
        past_history_section(past, ()),
        allergy_section(ctx.allergies),
        immunization_history_section(ctx.immunizations),
        family_history_section(ctx.family_history),
        _health_event(ctx, diagnoses),
    ]
    return document(MEDICAL_SUMMARY, ctx, body, patient_ids=_RECORD_IDS, contacts=True)


def personal_health_record(ctx: DocumentContext) -> bytes:
    """HSDA00.01 个人基本健康信息登记: the resident's registration in the health record (no visit)."""
    body = [
        blood_type_section(ctx.observations),
        allergy_section(ctx.allergies),
        past_history_section(ctx.conditions, ctx.procedures, coded=True),
        family_history_section(ctx.family_history),
    ]
    return document(
        PERSONAL_HEALTH_RECORD, ctx, body, patient_ids=_RECORD_IDS, contacts=True, with_encounter=False
    )
