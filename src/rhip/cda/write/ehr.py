"""WS/T 483 健康档案共享文档: 转诊（院）记录, 高血压 and 2型糖尿病 follow-ups, 预防接种 and 传染病 reports.

The templateIds 2.16.156.10011.2.1.1.9–.20 are inferred (cn-standards.md §3.1): only .16 was seen in a
vendor template. The public WS/T 483 samples that exist (the 2012 draft, repository gyk001/AHPServer)
are not valid CDA; the layout here reuses the WS/T 500 patterns for the same kinds of content.
"""

from __future__ import annotations

from rhip.cda import systems as s
from rhip.cda.errors import DocumentContentMissing
from rhip.cda.fhirread import Resource, coding, extension, text, ts
from rhip.cda.write.clinical import (
    diagnosis_line,
    diagnosis_section,
    icd10,
    immunization_entry,
    immunization_line,
    lab_results,
    lab_section,
    medication_section,
    vitals_section,
)
from rhip.cda.write.context import DocumentContext
from rhip.cda.write.header import DocumentType, document
from rhip.cda.write.markup import (
    ICD10,
    de,
    entry,
    obs_entry,
    observation,
    organizer,
    section,
    v_cd,
    v_st,
)

REFERRAL = DocumentType("HSDC00.05", "2.16.156.10011.2.1.1.20", "转诊（院）记录", "WS/T 483.20")
HYPERTENSION_FOLLOWUP = DocumentType(
    "HSDB04.01", "2.16.156.10011.2.1.1.12", "高血压患者随访服务", "WS/T 483.12"
)
DIABETES_FOLLOWUP = DocumentType(
    "HSDB04.02", "2.16.156.10011.2.1.1.13", "2型糖尿病患者随访服务", "WS/T 483.13"
)
IMMUNIZATION_REPORT = DocumentType("HSDB03.01", "2.16.156.10011.2.1.1.9", "预防接种报告", "WS/T 483.9")
INFECTIOUS_DISEASE_REPORT = DocumentType("HSDB03.02", "2.16.156.10011.2.1.1.10", "传染病报告", "WS/T 483.10")

_RECORD_IDS = ("health_record", "health_card")
# 随访方式 (codeSystem 2.16.156.10011.2.3.1.183) by FHIR encounter class; codes inferred from the 2012
# draft sample (1 门诊), the rest unverified.
_FOLLOWUP_MODES = {"AMB": ("1", "门诊"), "HH": ("2", "家庭"), "VR": ("3", "电话")}
_CASE_CLASS_URL = "urn:rhip:ext:case-classification"


def referral(ctx: DocumentContext) -> bytes:
    """HSDC00.05 转诊（院）记录: why and where the patient is sent, with diagnoses, findings and drugs."""
    if ctx.destination is None:
        raise DocumentContentMissing(
            "a referral needs DocumentContext.destination (the receiving Organization)"
        )
    when = ts(ctx.effective_time)
    reason = ctx.referral_reason or "；".join(diagnosis_line(c) for c in ctx.conditions) or "进一步诊治"
    target = str(ctx.destination.get("name", ""))
    effective = f'<effectiveTime value="{when}"/>' if when else ""
    entries = [
        # 转诊原因 DE06.00.177.00: inferred from the 2012 draft sample.
        obs_entry("DE06.00.177.00", "转诊原因", v_st(reason), effective=effective),
        obs_entry("DE08.10.013.00", "转入医疗卫生机构名称", v_st(target)),
    ]
    body = [
        section(
            "42349-1",
            "REASON FOR REFERRAL",
            "转诊信息",
            [f"转诊原因：{reason}", f"转入机构：{target}"],
            entries,
        ),
        diagnosis_section(ctx.conditions, heading=("29548-5", "Diagnosis", "初步诊断")),
        vitals_section(ctx.observations),
        lab_section(lab_results(ctx)),
        medication_section(ctx.medication_requests),
    ]
    return document(
        REFERRAL, ctx, body, patient_ids=_RECORD_IDS, legal_role="转诊医生", recipient=ctx.destination
    )


def _followup_section(ctx: DocumentContext, assessment: str) -> str:
    """随访信息: the way and date of the visit and how well the disease is controlled."""
    enc = ctx.encounter or {}
    code, name = _FOLLOWUP_MODES.get(enc.get("class", {}).get("code", "AMB"), ("9", "其他"))
    when = ts(enc.get("period", {}).get("start")) or ts(ctx.effective_time)
    entries = [
        # 随访方式 DE06.00.108.00: inferred from the 2012 draft sample.
        obs_entry(
            "DE06.00.108.00",
            "随访方式",
            v_cd(code, "2.16.156.10011.2.3.1.183", "随访方式代码表", name),
            effective=f'<effectiveTime value="{when}"/>',
        ),
        # No data-element id known for 此次随访分类: the entry is named, not coded.
        obs_entry(None, "此次随访分类", v_st(assessment)),
    ]
    return section(None, "", "随访信息", [f"随访方式：{name}", f"此次随访分类：{assessment}"], entries)


def _value(ctx: DocumentContext, loinc: str) -> float | None:
    """The first quantity with this LOINC code among the observations and their components."""
    for obs in ctx.observations:
        for part in [obs, *obs.get("component", ())]:
            code = coding(part.get("code"), s.LOINC)
            if code and code.get("code") == loinc:
                quantity = part.get("valueQuantity")
                if quantity and quantity.get("value") is not None:
                    return float(quantity["value"])
    return None


def _controlled(ok: bool | None) -> str:
    """此次随访分类 in the words of the follow-up forms."""
    return {True: "控制满意", False: "控制不满意", None: "未测"}[ok]


def _problems(ctx: DocumentContext) -> str:
    """The managed chronic disease as a problem list (LOINC 11450-4)."""
    return diagnosis_section(ctx.conditions, heading=("11450-4", "PROBLEM LIST", "健康问题"))


def hypertension_followup(ctx: DocumentContext) -> bytes:
    """HSDB04.01 高血压患者随访服务: blood pressure and other signs, the disease, drugs and control."""
    systolic, diastolic = _value(ctx, "8480-6"), _value(ctx, "8462-4")
    ok = None if systolic is None or diastolic is None else systolic < 140 and diastolic < 90
    body = [
        _followup_section(ctx, _controlled(ok)),
        vitals_section(ctx.observations),
        _problems(ctx),
        medication_section(ctx.medication_requests, mood="EVN"),
    ]
    return document(HYPERTENSION_FOLLOWUP, ctx, body, patient_ids=_RECORD_IDS, author_time=_visit(ctx))


def diabetes_followup(ctx: DocumentContext) -> bytes:
    """HSDB04.02 2型糖尿病患者随访服务: fasting glucose and other results, signs, the disease and drugs."""
    glucose = _value(ctx, "1558-6")
    ok = None if glucose is None else glucose < 7.0
    body = [
        _followup_section(ctx, _controlled(ok)),
        vitals_section(ctx.observations),
        lab_section(lab_results(ctx)),
        _problems(ctx),
        medication_section(ctx.medication_requests, mood="EVN"),
    ]
    return document(DIABETES_FOLLOWUP, ctx, body, patient_ids=_RECORD_IDS, author_time=_visit(ctx))


def _visit(ctx: DocumentContext) -> str:
    """When the follow-up visit began."""
    return ts((ctx.encounter or {}).get("period", {}).get("start"))


def immunization_report(ctx: DocumentContext) -> bytes:
    """HSDB03.01 预防接种报告: each dose given, with vaccine, lot, maker, route, site and vaccinator."""
    if not ctx.immunizations:
        raise DocumentContentMissing("an immunization report needs at least one Immunization")
    body = [
        section(
            "11369-6",
            "HISTORY OF IMMUNIZATIONS",
            "预防接种记录",
            [immunization_line(i) for i in ctx.immunizations],
            [immunization_entry(i, ctx) for i in ctx.immunizations],
        )
    ]
    first = ts(ctx.immunizations[0].get("occurrenceDateTime"))
    return document(
        IMMUNIZATION_REPORT, ctx, body, patient_ids=_RECORD_IDS, author_time=first, with_encounter=False
    )


def _is_notifiable(condition: Resource) -> bool:
    """Whether the Condition carries a notifiable-disease code."""
    return coding(condition.get("code"), s.NOTIFIABLE_DISEASE) is not None


def _case_entry(condition: Resource) -> tuple[list[str], str]:
    """One notifiable case: ICD-10 diagnosis with onset, the report-card disease and the case class."""
    card = coding(condition.get("code"), s.NOTIFIABLE_DISEASE) or {}
    case_ext = extension(condition, _CASE_CLASS_URL)
    case = (case_ext or {}).get("valueCoding") or {}
    code = icd10(condition)
    onset = ts(condition.get("onsetDateTime"))
    recorded = ts(condition.get("recordedDate"))
    components = [
        observation(
            de("DE05.01.024.00", "诊断代码"),
            v_cd(code.get("code"), ICD10, "ICD-10", code.get("display") or text(condition.get("code"))),
            effective=f'<effectiveTime><low value="{onset}"/></effectiveTime>' if onset else "",
        ),
        # The report card's disease and case-class codes have neither a known data-element id nor an OID.
        observation(
            de(None, "法定传染病病种"),
            v_cd(card.get("code"), None, "传染病报告卡疾病代码", card.get("display")),
        ),
    ]
    if case:
        components.append(
            observation(
                de(None, "病例分类"), v_cd(case.get("code"), None, "传染病病例分类代码", case.get("display"))
            )
        )
    lines = [
        diagnosis_line(condition),
        f"病例分类：{case.get('display', '')}" if case else "",
        f"发病日期：{condition.get('onsetDateTime', '')}" if onset else "",
        f"诊断日期：{str(condition.get('recordedDate', ''))[:10]}" if recorded else "",
    ]
    effective = f'<effectiveTime value="{recorded}"/>' if recorded else ""
    return lines, entry(organizer(components, effective=effective))


def infectious_disease_report(ctx: DocumentContext) -> bytes:
    """HSDB03.02 传染病报告: the notifiable case with its ICD-10 and report-card codes and case class."""
    cases = [c for c in ctx.conditions if _is_notifiable(c)] or list(ctx.conditions)
    if not cases:
        raise DocumentContentMissing("an infectious-disease report needs the notifiable Condition")
    lines: list[str] = []
    entries: list[str] = []
    for case in cases:
        case_lines, case_entry = _case_entry(case)
        lines.extend(case_lines)
        entries.append(case_entry)
    body = [
        section("29548-5", "Diagnosis", "传染病诊断", lines, entries),
        vitals_section(ctx.observations),
    ]
    recorded = ts(cases[0].get("recordedDate"))
    return document(INFECTIOUS_DISEASE_REPORT, ctx, body, patient_ids=_RECORD_IDS, author_time=recorded)
