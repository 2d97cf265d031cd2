"""Body sections shared by several document types, rendered from FHIR Observations, Conditions and orders.

Data-element ids (WS 363, codeSystem 2.16.156.10011.2.2.1) come from cn-standards.md §3.4 and the
WS/T 500 samples (repository wangk4i/LangZhongGit); the few marked *inferred* come from the 2012 draft
samples (repository gyk001/AHPServer), whose element ids look right but whose OIDs are placeholders.
Observations no known data element names keep their LOINC code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rhip.cda import systems as s
from rhip.cda.fhirread import Resource, coding, has_category, oid, person_name, text, ts
from rhip.cda.write.context import DocumentContext
from rhip.cda.write.header import STAFF, assigned_person, organization
from rhip.cda.write.markup import (
    ICD10,
    INTERPRETATION,
    LOINC,
    cd,
    component_of,
    de,
    entry,
    esc,
    ii,
    loinc,
    num,
    observation,
    organizer,
    q,
    section,
    v_cd,
    v_pq,
    v_st,
)

ATC = "2.16.840.1.113883.6.73"
PRESCRIPTION_NO = "2.16.156.10011.1.20"
LAB_REPORT_NO = "2.16.156.10011.1.33"

# LOINC vital sign → (data element, name). 收缩压/舒张压 from cn-standards §3.4; the others inferred.
VITAL_ELEMENTS = {
    "8480-6": ("DE04.10.174.00", "收缩压"),
    "8462-4": ("DE04.10.176.00", "舒张压"),
    "29463-7": ("DE04.10.188.00", "体重"),  # inferred
    "8867-4": ("DE04.10.206.00", "心率"),  # inferred
    "39156-5": ("DE05.10.075.00", "体质指数"),  # inferred
}
# 用药途径代码 (WS 364 CV06.00.102, codeSystem 2.16.156.10011.2.3.1.158); codes inferred, unverified.
ROUTES = {"口服": "1", "吸入": "5", "皮下注射": "401", "皮内注射": "402", "肌内注射": "403"}
ROUTE_SYSTEM = "2.16.156.10011.2.3.1.158"


def _quantity(value: Resource) -> tuple[object, str, str]:
    """(value, UCUM unit for PQ, printed unit) of a FHIR Quantity."""
    printed = str(value.get("unit") or "")
    ucum = str(value.get("code") or "") if value.get("system") == s.UCUM else ""
    # A PQ unit is a token: a printed unit with spaces ("10^9 /L") loses them.
    return value.get("value", ""), "".join((ucum or printed).split()) or "1", printed


def _loinc(resource: Resource) -> Resource | None:
    """The LOINC coding of an Observation."""
    return coding(resource.get("code"), s.LOINC)


def vital_signs(observations: Iterable[Resource]) -> tuple[list[str], list[str]]:
    """Narrative lines and entries for vital-sign Observations (blood pressure split in two)."""
    lines: list[str] = []
    entries: list[str] = []
    for obs in observations:
        if not has_category(obs, "vital-signs"):
            continue
        when = ts(obs.get("effectiveDateTime"))
        effective = f'<effectiveTime value="{when}"/>' if when else ""
        parts = obs.get("component") or [obs]
        for part in parts:
            quantity = part.get("valueQuantity")
            code = coding(part.get("code"), s.LOINC)
            if not quantity or quantity.get("value") is None or not code:
                continue
            value, unit, printed = _quantity(quantity)
            element = VITAL_ELEMENTS.get(code["code"])
            name = element[1] if element else text(part.get("code"))
            obs_code = de(element[0], name) if element else loinc(code["code"], name)
            entries.append(entry(observation(obs_code, v_pq(value, unit), effective=effective)))
            lines.append(f"{name} {num(value)} {printed}".rstrip())
    return lines, entries


def vitals_section(observations: Iterable[Resource]) -> str:
    """The 生命体征 section (LOINC 8716-3), or nothing without vital signs."""
    lines, entries = vital_signs(observations)
    return section("8716-3", "VITAL SIGNS", "生命体征", lines, entries) if entries else ""


def lab_results(ctx: DocumentContext) -> list[Resource]:
    """The laboratory Observations: those the report names, else all with category laboratory."""
    wanted = {
        r.get("reference", "").rpartition("/")[2] for r in (ctx.diagnostic_report or {}).get("result", ())
    }
    chosen = [o for o in ctx.observations if o.get("id") in wanted]
    return chosen or [o for o in ctx.observations if has_category(o, "laboratory")]


def _flag(obs: Resource) -> str:
    """The interpretation code (H, L, N …) of an Observation."""
    first = coding((obs.get("interpretation") or [{}])[0])
    return str(first.get("code", "")) if first else ""


def lab_line(obs: Resource) -> str:
    """One result for people: ``空腹血糖 7.8 mmol/L ↑（3.9–6.1）``."""
    quantity = obs.get("valueQuantity") or {}
    value, _, printed = _quantity(quantity)
    arrow = {"H": " ↑", "HH": " ↑↑", "L": " ↓", "LL": " ↓↓"}.get(_flag(obs), "")
    ranges = obs.get("referenceRange") or []
    low, high = (ranges[0].get("low", {}), ranges[0].get("high", {})) if ranges else ({}, {})
    bounds = f"（{num(low.get('value', ''))}–{num(high.get('value', ''))}）" if low or high else ""
    result = (
        f"{num(value)} {printed}".rstrip()
        if quantity
        else text(obs.get("valueCodeableConcept")) or obs.get("valueString", "")
    )
    return f"{text(obs.get('code'))} {result}{arrow}{bounds}"


def _reference_range(obs: Resource, unit: str) -> str:
    """referenceRange/observationRange with the low and high bounds."""
    ranges = obs.get("referenceRange") or []
    if not ranges:
        return ""
    bounds = "".join(
        f'<{side} value="{num(ranges[0][side]["value"])}" unit="{q(unit)}"/>'
        for side in ("low", "high")
        if ranges[0].get(side, {}).get("value") is not None
    )
    return f'<referenceRange><observationRange><value xsi:type="IVL_PQ">{bounds}</value></observationRange></referenceRange>'


def lab_entry(obs: Resource) -> str:
    """One result as the C0007 sample groups it: 检验项目代码 and 检验定量结果 with unit, flag and range."""
    code = _loinc(obs) or coding(obs.get("code")) or {}
    is_loinc = code.get("system") == s.LOINC
    name = text(obs.get("code"))
    when = ts(obs.get("effectiveDateTime"))
    effective = f'<effectiveTime value="{when}"/>' if when else ""
    item = observation(
        de("DE04.30.019.00", "检验项目代码"),
        v_cd(
            code.get("code"),
            LOINC if is_loinc else oid(code.get("system")),
            "LOINC" if is_loinc else None,
            name,
        ),
        effective=effective,
    )
    quantity = obs.get("valueQuantity")
    if quantity is None or quantity.get("value") is None:  # a qualitative result: coded, else text
        concept = obs.get("valueCodeableConcept")
        coded = coding(concept)
        shown = (
            v_cd(coded.get("code"), oid(coded.get("system")), None, text(concept))
            if coded
            else v_st(text(concept) or obs.get("valueString", ""))
        )
        return entry(organizer([item, observation(de("DE04.30.017.00", "检验结果代码"), shown)]))
    value, unit, printed = _quantity(quantity)
    flag = _flag(obs)
    interpretation = (
        cd("interpretationCode", flag, INTERPRETATION, "ObservationInterpretation") if flag else ""
    )
    unit_obs = observation(de("DE04.30.016.00", "检验定量结果计量单位"), v_st(printed)) if printed else ""
    result = observation(
        de("DE04.30.015.00", "检验定量结果"),
        v_pq(value, unit),
        interpretation=interpretation,
        relationships=[component_of(unit_obs)] if unit_obs else (),
        reference_range=_reference_range(obs, unit),
    )
    return entry(organizer([item, result]))


def lab_section(results: Sequence[Resource], extra: Iterable[str] = ()) -> str:
    """The 实验室检查 section (LOINC 30954-2), or nothing without results."""
    if not results:
        return ""
    entries = [*extra, *(lab_entry(o) for o in results)]
    return section("30954-2", "STUDIES SUMMARY", "实验室检查", [lab_line(o) for o in results], entries)


def icd10(condition: Resource) -> Resource:
    """The ICD-10 coding of a Condition (empty when it has none)."""
    return coding(condition.get("code"), s.ICD10) or {}


def diagnosis_entry(condition: Resource, qualifier: str | None = None) -> str:
    """A diagnosis as the samples write it: an organizer of 诊断名称 (ST) and 诊断代码 (ICD-10)."""
    code = icd10(condition)
    name = text(condition.get("code"))
    recorded = ts(condition.get("recordedDate"))
    onset = ts(condition.get("onsetDateTime"))
    effective = f'<effectiveTime value="{recorded}"/>' if recorded else ""
    onset_time = f'<effectiveTime><low value="{onset}"/></effectiveTime>' if onset else ""
    label = f"{qualifier}名称" if qualifier else "诊断名称"
    return entry(
        organizer(
            [
                observation(de("DE05.01.025.00", label, qualifier), v_st(name), effective=effective),
                observation(
                    de("DE05.01.024.00", f"{qualifier}疾病编码" if qualifier else "诊断代码", qualifier),
                    v_cd(code.get("code"), ICD10, "ICD-10", code.get("display") or name),
                    effective=onset_time,
                ),
            ]
        )
    )


def diagnosis_line(condition: Resource) -> str:
    """``肺炎（J18.9）``."""
    code = icd10(condition).get("code")
    name = text(condition.get("code"))
    return f"{name}（{code}）" if code else name


def diagnosis_section(
    conditions: Sequence[Resource],
    qualifier: str | None = None,
    extra: Iterable[str] = (),
    *,
    heading: tuple[str, str, str] = ("29548-5", "Diagnosis", "诊断"),
    lines: Iterable[str] = (),
) -> str:
    """A diagnosis section (by default 诊断, LOINC 29548-5), or nothing without diagnoses or extras."""
    entries = [*(diagnosis_entry(c, qualifier) for c in conditions), *extra]
    if not entries:
        return ""
    code, display, title = heading
    return section(code, display, title, [*(diagnosis_line(c) for c in conditions), *lines], entries)


def _route(concept: Resource | None, fallback: str = "") -> str:
    """A routeCode from the route text (口服, 肌内注射 …)."""
    name = text(concept) or fallback
    if not name:
        return ""
    return cd("routeCode", ROUTES.get(name), ROUTE_SYSTEM, "用药途径代码表", name)


def medication_entry(request: Resource, mood: str = "INT") -> str:
    """A MedicationRequest as substanceAdministration: text, period, route, dose, drug and total amount.

    A prescription is mood INT, as the WS/T 500 samples write it (x_DocumentSubstanceMood also has RQO).
    """
    drug = request.get("medicationCodeableConcept") or {}
    atc = coding(drug, s.ATC)
    dosage = (request.get("dosageInstruction") or [{}])[0]
    number = next(
        (i["value"] for i in request.get("identifier", ()) if oid(i.get("system")) == PRESCRIPTION_NO), None
    )
    parts = [f'<substanceAdministration classCode="SBADM" moodCode="{mood}">']
    if number:
        parts.append(ii(PRESCRIPTION_NO, number))
    if dosage.get("text"):
        parts.append(f"<text>{esc(dosage['text'])}</text>")
    status = "completed" if request.get("status") in ("completed", "stopped") else "active"
    parts.append(f'<statusCode code="{status}"/>')
    start = ts(request.get("authoredOn"))
    if start:
        parts.append(f'<effectiveTime xsi:type="IVL_TS"><low value="{start}"/></effectiveTime>')
    fallback = "口服" if str(dosage.get("text", "")).startswith("口服") else ""
    parts.append(_route(dosage.get("route"), fallback))
    dose = ((dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity")
    if dose:
        value, unit, _ = _quantity(dose)
        parts.append(f'<doseQuantity value="{num(value)}" unit="{q(unit)}"/>')
    drug_code = cd("code", atc["code"], ATC, "ATC", atc.get("display")) if atc else ""
    parts.append(
        "<consumable><manufacturedProduct><manufacturedLabeledDrug>"
        f"{drug_code}<name>{esc(text(drug))}</name></manufacturedLabeledDrug></manufacturedProduct></consumable>"
    )
    total = (request.get("dispenseRequest") or {}).get("quantity")
    if total:
        value, unit, _ = _quantity(total)
        parts.append(component_of(observation(de("DE06.00.135.00", "药物使用总剂量"), v_pq(value, unit))))
    parts.append("</substanceAdministration>")
    return entry("".join(parts))


def medication_line(request: Resource) -> str:
    """``阿莫西林胶囊 0.25g：口服，每次0.5g，每日3次``."""
    dosage = (request.get("dosageInstruction") or [{}])[0]
    name = text(request.get("medicationCodeableConcept"))
    return f"{name}：{dosage['text']}" if dosage.get("text") else name


def medication_section(requests: Sequence[Resource], mood: str = "INT") -> str:
    """The 用药 section (LOINC 10160-0), or nothing without medications."""
    if not requests:
        return ""
    return section(
        "10160-0",
        "HISTORY OF MEDICATION USE",
        "用药记录",
        [medication_line(r) for r in requests],
        [medication_entry(r, mood) for r in requests],
    )


def immunization_entry(imm: Resource, ctx: DocumentContext) -> str:
    """An Immunization as substanceAdministration: vaccine, lot, maker, dose number, route, site and vaccinator."""
    vaccine = imm.get("vaccineCode") or {}
    code = coding(vaccine) or {}
    protocol = (imm.get("protocolApplied") or [{}])[0]
    dose_no = protocol.get("doseNumberPositiveInt")
    parts = [
        '<substanceAdministration classCode="SBADM" moodCode="EVN">',
        f"<text>{esc(immunization_line(imm))}</text>",
        '<statusCode code="completed"/>',
    ]
    when = ts(imm.get("occurrenceDateTime"))
    if when:
        parts.append(f'<effectiveTime value="{when}"/>')
    if dose_no:
        parts.append(f'<repeatNumber value="{dose_no}"/>')
    parts.append(_route(imm.get("route")))
    if text(imm.get("site")):
        parts.append(cd("approachSiteCode", None, display=text(imm.get("site"))))
    if imm.get("doseQuantity"):
        value, unit, _ = _quantity(imm["doseQuantity"])
        parts.append(f'<doseQuantity value="{num(value)}" unit="{q(unit)}"/>')
    # The immunization programme's vaccine codes have no known OID: the code goes without codeSystem.
    material = cd(
        "code", code.get("code"), oid(code.get("system")), "国家免疫规划疫苗代码", code.get("display")
    )
    lot = f"<lotNumberText>{esc(imm['lotNumber'])}</lotNumberText>" if imm.get("lotNumber") else ""
    maker = (imm.get("manufacturer") or {}).get("display")
    maker_xml = (
        f"<manufacturerOrganization><name>{esc(maker)}</name></manufacturerOrganization>" if maker else ""
    )
    parts.append(
        f"<consumable><manufacturedProduct><manufacturedMaterial>{material}<name>{esc(text(vaccine))}</name>{lot}"
        f"</manufacturedMaterial>{maker_xml}</manufacturedProduct></consumable>"
    )
    parts.append(
        f'<performer typeCode="PRF"><assignedEntity>{ii(STAFF, _staff(ctx))}{assigned_person(ctx.author)}'
        f"{organization(ctx.custodian)}</assignedEntity></performer>"
    )
    parts.append("</substanceAdministration>")
    return entry("".join(parts))


def _staff(ctx: DocumentContext) -> str | None:
    """The author's staff number."""
    return next(
        (str(i["value"]) for i in ctx.author.get("identifier", ()) if i.get("system") == s.STAFF_NO), None
    )


def immunization_line(imm: Resource) -> str:
    """``百白破疫苗 第2剂 批号202301A17 左上臂 肌内注射 0.5 mL``."""
    protocol = (imm.get("protocolApplied") or [{}])[0]
    dose = imm.get("doseQuantity") or {}
    pieces = [
        text(imm.get("vaccineCode")),
        f"第{protocol['doseNumberPositiveInt']}剂" if protocol.get("doseNumberPositiveInt") else "",
        f"批号{imm['lotNumber']}" if imm.get("lotNumber") else "",
        text(imm.get("site")),
        text(imm.get("route")),
        f"{num(dose['value'])} {dose.get('unit', '')}".rstrip() if dose.get("value") is not None else "",
        (imm.get("manufacturer") or {}).get("display", ""),
    ]
    return " ".join(p for p in pieces if p)


def department_name(encounter: Resource | None) -> str:
    """The name of the encounter's first location with one (the department, 科室)."""
    places = [loc.get("location", {}).get("display") for loc in (encounter or {}).get("location", ())]
    return str(next((p for p in places if p), ""))


def author_line(ctx: DocumentContext, label: str) -> str:
    """``label：name`` for the author."""
    return f"{label}：{person_name(ctx.author)}"
