"""Sections about the person rather than one visit: past illnesses and operations, allergies, family history,
immunizations given, blood type. Shared by C0001 病历概要 and HSDA00.01 个人基本健康信息登记.

Data-element ids from the public WS/T 500 C0001 sample (repository wangk4i/LangZhongGit, ``C001病历概要.xml``):
DE02.10.026.00 疾病史（含外伤）, DE02.10.061.00 手术史, DE02.10.022.00 过敏史, DE02.10.101.00 预防接种史,
DE02.10.103.00 家族史, DE04.50.001.00 ABO血型, DE04.50.010.00 Rh血型, DE06.00.094.00 手术(操作)名称.
Section codes (LOINC) from the same sample.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rhip.cda import systems as s
from rhip.cda.fhirread import Resource, coding, text, ts
from rhip.cda.write.clinical import diagnosis_entry, diagnosis_line, immunization_line
from rhip.cda.write.markup import (
    component_of,
    de,
    entry,
    obs_entry,
    observation,
    organizer,
    q,
    section,
    v_cd,
    v_st,
)

ICD9CM3 = "2.16.156.10011.2.3.3.12"
ABO_SYSTEM = "2.16.156.10011.2.3.1.85"  # CV04.50.005 ABO血型代码表
RH_SYSTEM = "2.16.156.10011.2.3.1.250"  # CV04.50.020 Rh(D)血型代码表
# ABO: 1 A型 2 B型 3 O型 4 AB型 5 不详; Rh: 1 阴性 2 阳性 3 不详 (cn-standards.md §3.5; Rh unverified).
_ABO = {"A": ("1", "A型"), "B": ("2", "B型"), "O": ("3", "O型"), "AB": ("4", "AB型")}
_RH = {
    "阴性": ("1", "阴性"),
    "NEG": ("1", "阴性"),
    "-": ("1", "阴性"),
    "阳性": ("2", "阳性"),
    "POS": ("2", "阳性"),
    "+": ("2", "阳性"),
}
_ABO_TEXT = re.compile(r"\s*(AB|A|B|O)(?![A-Z])")
_ABO_LOINC, _RH_LOINC, _ABO_RH_LOINC = "883-9", "10331-7", "882-1"
_ALLERGY_KIND = {"medication": "药物", "food": "食物", "environment": "环境", "biologic": "生物制品"}
_PROCEDURE_STATUS = {
    "completed": "completed",
    "in-progress": "active",
    "not-done": "aborted",
    "stopped": "aborted",
}


def _observation_value(obs: Resource) -> str:
    return text(obs.get("valueCodeableConcept")) or str(obs.get("valueString") or "")


def _blood_types(observations: Sequence[Resource]) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """(ABO, Rh) as (code, name) from Observations coded 883-9, 10331-7 or 882-1 (ABO and Rh together)."""
    abo = rh = None
    for obs in observations:
        code = (coding(obs.get("code"), s.LOINC) or {}).get("code")
        value = _observation_value(obs).upper()
        if code in (_ABO_LOINC, _ABO_RH_LOINC):
            found = _ABO_TEXT.match(value)
            abo = _ABO[found.group(1)] if found else abo
        if code in (_RH_LOINC, _ABO_RH_LOINC):
            rh_part = value.partition("RH")[2] if "RH" in value else value
            rh = next((name for key, name in _RH.items() if key in rh_part), rh)
    return abo, rh


def blood_type_section(observations: Sequence[Resource]) -> str:
    """实验室检验 (LOINC 30954-2) with the ABO and Rh blood types, or nothing when neither is known."""
    abo, rh = _blood_types(observations)
    components = []
    if abo:
        components.append(
            observation(de("DE04.50.001.00", "ABO血型"), v_cd(abo[0], ABO_SYSTEM, "ABO血型代码表", abo[1]))
        )
    if rh:
        components.append(
            observation(de("DE04.50.010.00", "Rh血型"), v_cd(rh[0], RH_SYSTEM, "Rh(D)血型代码表", rh[1]))
        )
    if not components:
        return ""
    lines = [f"ABO血型：{abo[1]}" if abo else "", f"Rh血型：{rh[1]}" if rh else ""]
    body = organizer(components, class_code="BATTERY")
    return section("30954-2", "STUDIES SUMMARY", "实验室检验", lines, [entry(body)])


def condition_history_line(condition: Resource) -> str:
    """``原发性高血压（I10），2019-05-10确诊``."""
    when = str(condition.get("onsetDateTime") or condition.get("recordedDate") or "")[:10]
    return f"{diagnosis_line(condition)}，{when}确诊" if when else diagnosis_line(condition)


def procedure_line(procedure: Resource) -> str:
    """``低位子宫下段剖宫产（74.1），2025-03-31``."""
    code = (coding(procedure.get("code"), s.ICD9CM3) or {}).get("code")
    name = text(procedure.get("code"))
    when = str(
        procedure.get("performedDateTime") or (procedure.get("performedPeriod") or {}).get("start") or ""
    )
    shown = f"{name}（{code}）" if code else name
    return f"{shown}，{when[:10]}" if when else shown


def procedure_entry(procedure: Resource) -> str:
    """A Procedure as ``procedure`` (ICD-9-CM-3 code, status, date) with its name as 手术(操作)名称."""
    concept = procedure.get("code") or {}
    code = coding(concept, s.ICD9CM3) or {}
    name = text(concept)
    when = ts(procedure.get("performedDateTime") or (procedure.get("performedPeriod") or {}).get("start"))
    status = _PROCEDURE_STATUS.get(str(procedure.get("status")), "completed")
    coded = (
        f'<code code="{q(code["code"])}" codeSystem="{ICD9CM3}" codeSystemName="手术(操作)代码表(ICD-9-CM-3)"'
        f' displayName="{q(code.get("display") or name)}"/>'
        if code.get("code")
        else f'<code nullFlavor="OTH" displayName="{q(name)}"/>'
    )
    effective = f'<effectiveTime value="{when}"/>' if when else ""
    named = component_of(observation(de("DE06.00.094.00", "手术(操作)名称"), v_st(name)))
    return entry(
        f'<procedure classCode="PROC" moodCode="EVN">{coded}<statusCode code="{status}"/>{effective}{named}</procedure>'
    )


def allergy_line(allergy: Resource) -> str:
    """``青霉素类（药物）：皮疹``."""
    kinds = "、".join(_ALLERGY_KIND.get(k, k) for k in allergy.get("category", ()))
    name = text(allergy.get("code"))
    reactions = "、".join(
        text(m) for r in allergy.get("reaction", ()) for m in r.get("manifestation", ()) if text(m)
    )
    shown = f"{name}（{kinds}）" if kinds else name
    return f"{shown}：{reactions}" if reactions else shown


def allergy_section(allergies: Sequence[Resource]) -> str:
    """过敏史 (LOINC 48765-2): the allergies in words, one 过敏史 entry each, or nothing without any."""
    current = [
        a for a in allergies if (coding(a.get("verificationStatus")) or {}).get("code") != "entered-in-error"
    ]
    if not current:
        return ""
    lines = [allergy_line(a) for a in current]
    entries = [obs_entry("DE02.10.022.00", "过敏史", v_st(line)) for line in lines]
    return section("48765-2", "Allergies, adverse reactions, alerts", "过敏史", lines, entries)


def past_history_section(
    conditions: Sequence[Resource], procedures: Sequence[Resource], *, coded: bool = False
) -> str:
    """既往史 (LOINC 11348-0): illnesses and operations; ``coded`` adds each diagnosis as an ICD-10 entry."""
    if not conditions and not procedures:
        return ""
    illness = [condition_history_line(c) for c in conditions]
    operations = [procedure_line(p) for p in procedures]
    entries = []
    if illness:
        entries.append(obs_entry("DE02.10.026.00", "疾病史（含外伤）", v_st("；".join(illness))))
    if operations:
        entries.append(obs_entry("DE02.10.061.00", "手术史", v_st("；".join(operations))))
    if coded:
        entries.extend(diagnosis_entry(c) for c in conditions)
    entries.extend(procedure_entry(p) for p in procedures)
    lines = [*(f"疾病史：{line}" for line in illness), *(f"手术史：{line}" for line in operations)]
    return section("11348-0", "HISTORY OF PAST ILLNESS", "既往史", lines, entries)


def immunization_history_section(immunizations: Sequence[Resource]) -> str:
    """预防接种史 (LOINC 11369-6) in words, or nothing without immunizations."""
    if not immunizations:
        return ""
    lines = [
        f"{str(i.get('occurrenceDateTime', ''))[:10]} {immunization_line(i)}".strip() for i in immunizations
    ]
    return section(
        "11369-6",
        "HISTORY OF IMMUNIZATIONS",
        "预防接种史",
        lines,
        [obs_entry("DE02.10.101.00", "预防接种史", v_st("；".join(lines)))],
    )


def family_line(history: Resource) -> str:
    """``父亲：原发性高血压、2型糖尿病``."""
    who = text(history.get("relationship")) or "亲属"
    illnesses = "、".join(text(c.get("code")) for c in history.get("condition", ()) if text(c.get("code")))
    return f"{who}：{illnesses or '无'}"


def family_history_section(histories: Sequence[Resource]) -> str:
    """家族史 (LOINC 10157-6) from FamilyMemberHistory, or nothing without any."""
    if not histories:
        return ""
    lines = [family_line(h) for h in histories]
    entries = [obs_entry("DE02.10.103.00", "家族史", v_st("；".join(lines)))]
    return section("10157-6", "HISTORY OF FAMILY MEMBER DISEASES", "家族史", lines, entries)
