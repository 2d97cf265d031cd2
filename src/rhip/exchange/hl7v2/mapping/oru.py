"""ORU^R01 → DiagnosticReport, Observation, Specimen and ServiceRequest (v2-to-FHIR ORU_R01).

Per OBR: a DiagnosticReport identified by the filler order number (``urn:rhip:order:<institution>``, else
the placer's), with the report number also under 检验报告单号 (``…1.33``) for laboratory sections and
检查报告单号 (``…1.32``) for imaging ones; per OBX an Observation identified by that number and the OBX
set id (``urn:rhip:result:<institution>|<number>-<set id>``; set id and sub-id, or the position, when set
ids repeat); per SPM a Specimen; and, when the message carries a placer order number, the ServiceRequest
of the order, created if the order feed has not sent it (never overwritten: it is the placer's).

A result still on its way (preliminary, registered: OBR-25/OBX-11 P, I, R, S, O …) is created once; a final,
corrected, amended or cancelled one replaces what is stored, so that the final report supersedes the
preliminary one and a correction supersedes the final, while a repeated message creates nothing new.
ED and RP values (an embedded or referenced report) become DiagnosticReport.presentedForm.
"""

from __future__ import annotations

from collections import Counter

from rhip.exchange.hl7v2.datatypes import (
    coding,
    cwe_concept,
    ts_datetime,
    ts_instant,
    uri_name,
    xcn_reference,
)
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    Mapped,
    Mapper,
    MappingContext,
    MappingError,
    identifier_criteria,
    location,
    missing,
    reading,
    reference,
    start,
)
from rhip.exchange.hl7v2.mapping.clinical import map_observation
from rhip.exchange.hl7v2.mapping.groups import (
    Observed,
    OrderGroup,
    Subject,
    map_subject,
    notes,
    patient_groups,
)
from rhip.exchange.hl7v2.mapping.obx import (
    absent_reason,
    attachment,
    interpretation,
    is_attachment,
    observation_status,
    observation_value,
    reference_range,
    status_code,
)
from rhip.exchange.hl7v2.mapping.orders import order_numbers, order_status, section_category, service_request
from rhip.exchange.hl7v2.mapping.specimen import map_specimen
from rhip.exchange.hl7v2.message import Message, Segment

RESULT_PREFIX = "urn:rhip:result:"
LAB_REPORT_NO = "urn:oid:2.16.156.10011.1.33"  # 检验报告单号
EXAM_REPORT_NO = "urn:oid:2.16.156.10011.1.32"  # 检查报告单号
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# HL7 table 0074 sections: laboratory ones and imaging/diagnostic-exam ones
LAB_SECTIONS = frozenset("LAB BG BLB CG CH CP HM HLA ICU IMM MB MCB MYC OSL SP SR TX URN VR".split())  # noqa: SIM905
IMAGING_SECTIONS = frozenset("RAD CT CTH CUS EC EN NMR NMS OUS RUS RX VUS XRC US MR".split())  # noqa: SIM905
# HL7 table 0123 (OBR-25) -> DiagnosticReport.status
REPORT_STATUS = {"O": "registered", "I": "registered", "S": "registered", "N": "registered", "A": "partial"}
REPORT_STATUS |= {"R": "partial", "P": "preliminary", "F": "final", "C": "corrected", "M": "corrected"}
REPORT_STATUS |= {"X": "cancelled"}
REPLACING_REPORT = frozenset("FCMX")  # a report in these states supersedes what is stored
REPLACING_RESULT = frozenset("FCABDWXUV")  # the same for one OBX (table 0085)
# an OBX without OBX-11 takes its status from the report's
_RESULT_DEFAULT = {"registered": "registered", "partial": "preliminary", "preliminary": "preliminary"}
_RESULT_DEFAULT |= {"final": "final", "corrected": "corrected", "cancelled": "cancelled"}


def _report_number_system(section: str) -> str | None:
    if section in LAB_SECTIONS:
        return LAB_REPORT_NO
    if section in IMAGING_SECTIONS:
        return EXAM_REPORT_NO
    return None


def _observation_category(section: str) -> list[Json]:
    code = "laboratory" if section in LAB_SECTIONS else "imaging" if section in IMAGING_SECTIONS else ""
    return [{"coding": [coding(code, "", OBSERVATION_CATEGORY)]}] if code else []


def result_keys(observed: list[Observed]) -> list[str]:
    """What tells the OBX of one report apart: the set id, else set id and sub-id, else the position."""
    set_ids = [o.obx.get(1).strip() for o in observed]
    pairs = [(s, o.obx.get(4).strip()) for s, o in zip(set_ids, observed, strict=True)]
    once, pair_once = Counter(set_ids), Counter(pairs)
    keys = []
    for n, (set_id, pair) in enumerate(zip(set_ids, pairs, strict=True), 1):
        if set_id and once[set_id] == 1:
            keys.append(set_id)
        elif set_id and pair[1] and pair_once[pair] == 1:
            keys.append(f"{set_id}.{pair[1]}")
        else:
            keys.append(f"p{n}")
    return keys


class _Report:
    """What the OBX of one OBR share: the report's number, section, times and status."""

    def __init__(self, builder: BundleBuilder, obr: Segment, number: str, subject: Subject) -> None:
        self.builder, self.obr, self.number, self.subject = builder, obr, number, subject
        self.section = obr.get(24).strip().upper()
        zone = builder.ctx.zone
        with reading(obr, 7):
            self.effective = ts_datetime(obr.get(7), zone)
        with reading(obr, 22):
            self.issued = ts_instant(obr.get(22), zone)
        self.status_code = obr.get(25).strip().upper()
        self.performer = reference(builder.organization())

    def observation(self, observed: Observed, key: str, specimen: str | None) -> tuple[str, str]:
        """One OBX → Observation; its fullUrl and status."""
        builder, obx = self.builder, observed.obx
        institution, zone = builder.ctx.institution, builder.ctx.zone
        value = f"{self.number}-{key}"
        identifiers = [{"system": RESULT_PREFIX + uri_name(institution), "value": value}]
        national = _report_number_system(self.section)
        if national:
            identifiers.append({"system": national, "value": value})
        status = observation_status(
            obx, _RESULT_DEFAULT.get(REPORT_STATUS.get(self.status_code, ""), "unknown")
        )
        result: Json = {"resourceType": "Observation", "identifier": identifiers, "status": status}
        category = _observation_category(self.section)
        if category:
            result["category"] = category
        with reading(obx, 3):
            code = cwe_concept(obx.raw(3), obx.delimiters, institution)
        if code is None:
            raise missing(obx, 3, "observation identifier")
        result["code"] = code
        result["subject"] = reference(self.subject.patient.full_url)
        if self.subject.encounter is not None:
            result["encounter"] = reference(self.subject.encounter.full_url)
        with reading(obx, 14):
            effective = ts_datetime(obx.get(14), zone) or self.effective
        if effective:
            result["effectiveDateTime"] = effective
        if self.issued:
            result["issued"] = self.issued
        performers = [self.performer]
        for raw in obx.repetitions(16):
            who = xcn_reference(raw, obx.delimiters, institution)
            if who is not None:
                performers.append(who)
        result["performer"] = performers
        value_x = observation_value(obx, builder)
        result |= value_x
        reason = absent_reason(obx) if not value_x else None
        if reason:
            result["dataAbsentReason"] = reason
        flags = interpretation(obx)
        if flags:
            result["interpretation"] = flags
        annotations = notes(observed.notes)
        if annotations:
            result["note"] = annotations
        if specimen:
            result["specimen"] = reference(specimen)
        range_ = reference_range(obx)
        if range_:
            result["referenceRange"] = [range_]
        criteria = identifier_criteria(identifiers[0])
        own = status_code(obx)
        replace = own in REPLACING_RESULT if own else self.status_code in REPLACING_REPORT
        write = builder.put if replace else builder.create
        return write(result, criteria, location(builder.message, obx)), status


def _derived_status(statuses: list[str]) -> str:
    if statuses and all(s in ("final", "corrected", "amended") for s in statuses):
        return "final"
    if any(s == "preliminary" for s in statuses):
        return "preliminary"
    return "unknown"


def map_report(builder: BundleBuilder, order: OrderGroup, subject: Subject) -> str:
    """One OBR with its OBX and SPM → DiagnosticReport (and what it refers to); its fullUrl."""
    obr = order.detail
    assert obr is not None
    institution = builder.ctx.institution
    numbers = order_numbers(order, institution)
    key = numbers.report_key()
    if key is None:
        raise missing(obr, 3, "filler order number")
    with reading(obr, 4):
        code = cwe_concept(obr.raw(4), obr.delimiters, institution)
    if code is None:
        raise missing(obr, 4, "universal service identifier")
    report = _Report(builder, obr, str(key["value"]), subject)
    based_on = None
    if numbers.placer:
        status = "completed" if report.status_code in REPLACING_REPORT else "active"
        request = service_request(builder, order, subject, numbers, order_status(order.orc, status))
        request_key = numbers.request_key()
        assert request_key is not None
        based_on = builder.create(request, identifier_criteria(request_key), location(builder.message, obr))
    specimens = [
        map_specimen(builder, group.spm, subject, f"{key['value']}-SPM{n}")
        for n, group in enumerate(order.specimens, 1)
    ]
    observed: list[tuple[Observed, str | None]] = [(o, None) for o in order.observations]
    observed += [
        (o, url) for group, url in zip(order.specimens, specimens, strict=True) for o in group.observations
    ]
    keys = result_keys([o for o, _ in observed])
    results, statuses, forms = [], [], []
    for (item, specimen), result_key in zip(observed, keys, strict=True):
        if is_attachment(item.obx):
            form = attachment(item.obx)
            if form is not None:
                forms.append(form)
            continue
        full_url, status = report.observation(item, result_key, specimen)
        results.append(reference(full_url))
        statuses.append(status)
    identifiers = [key]
    national = _report_number_system(report.section)
    if national:
        identifiers.append({"system": national, "value": key["value"]})
    status = REPORT_STATUS.get(report.status_code) or _derived_status(statuses)
    resource: Json = {"resourceType": "DiagnosticReport", "identifier": identifiers}
    if based_on:
        resource["basedOn"] = [reference(based_on)]
    resource["status"] = status
    category = section_category(obr)
    if category:
        resource["category"] = category
    resource["code"] = code
    resource["subject"] = reference(subject.patient.full_url)
    if subject.encounter is not None:
        resource["encounter"] = reference(subject.encounter.full_url)
    with reading(obr, 8):
        end = ts_datetime(obr.get(8), builder.ctx.zone)
    if report.effective and end:
        resource["effectivePeriod"] = {"start": report.effective, "end": end}
    elif report.effective:
        resource["effectiveDateTime"] = report.effective
    if report.issued:
        resource["issued"] = report.issued
    resource["performer"] = [report.performer]
    if specimens:
        resource["specimen"] = [reference(url) for url in specimens]
    if results:
        resource["result"] = results
    if forms:
        resource["presentedForm"] = forms
    write = builder.put if report.status_code in REPLACING_REPORT else builder.create
    return write(resource, identifier_criteria(key), location(builder.message, obr), focus=True)


def map_oru_r01(message: Message, ctx: MappingContext) -> Mapped:
    """ORU^R01: per patient its Patient and visit, per OBR a DiagnosticReport with its results."""
    builder = start(message, ctx)
    keys: list[str] = []
    reports = 0
    for group in patient_groups(message):
        subject = map_subject(builder, group)
        keys.append(subject.patient.key)
        for observed in group.observations:  # patient-level observations (v2.7+ PATIENT_OBSERVATION)
            map_observation(builder, observed.obx, subject.patient, subject.encounter)
        for order in group.orders:
            if order.detail is None or order.detail.name != "OBR":
                if order.observations or order.specimens:
                    seg = order.first
                    raise MappingError(
                        f"{seg.name} is followed by results but no OBR", segment="OBR", hl7_code="100"
                    )
                continue
            map_report(builder, order, subject)
            reports += 1
    if not reports:
        raise MappingError("the ORU^R01 message has no OBR segment", segment="OBR", hl7_code="100")
    return builder.mapped(keys)


MAPPERS: dict[str, Mapper] = {"ORU^R01": map_oru_r01}
