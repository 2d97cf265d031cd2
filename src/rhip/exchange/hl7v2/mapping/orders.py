"""ORM^O01 and OML^O21 → ServiceRequest, and the order numbers every order and result message shares.

An order is known by its placer order number (ORC-2/OBR-2, given by the ordering system) and its filler
order number (ORC-3/OBR-3, given by the performing system), both unique within the sending institution:
``urn:rhip:placer-order:<institution>`` and ``urn:rhip:order:<institution>``. A ServiceRequest is found by
its placer number when it has one (the number the result of the order will carry too), else by its filler
number. A new order (ORC-1 NW) is created once; any other order control (status change, cancel, change)
updates it, since the latest message about an order says what it now is.

ServiceRequest (v2-to-FHIR ORC/OBR[ServiceRequest]): status from ORC-5 (table 0038), else ORC-1 (0119);
code from OBR-4 (RXO-1, RQD-2 for orders without OBR); category OBR-24; priority TQ1-9, else OBR-5;
occurrence TQ1-7/TQ1-8, else OBR-7; authoredOn ORC-9; requester ORC-12, else OBR-16; reasonCode OBR-31;
NTE as note; SPM as Specimen; OBX (answers asked at order entry) as Observations in supportingInfo.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhip.exchange.hl7v2.datatypes import (
    V2_TABLE,
    coding,
    cwe_concept,
    ts_datetime,
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
from rhip.exchange.hl7v2.mapping.groups import OrderGroup, Subject, map_subject, notes, patient_groups
from rhip.exchange.hl7v2.mapping.specimen import map_specimen
from rhip.exchange.hl7v2.message import Message, Segment

ORDER_PREFIX = "urn:rhip:order:"  # filler order numbers, unique within the institution
PLACER_PREFIX = "urn:rhip:placer-order:"  # placer order numbers
GROUP_PREFIX = "urn:rhip:placer-group:"  # placer group numbers (ORC-4)
IDENTIFIER_TYPE = V2_TABLE + "0203"
SECTION = V2_TABLE + "0074"  # diagnostic service section (OBR-24)
# HL7 table 0038 (ORC-5 order status) and table 0119 (ORC-1 order control) -> ServiceRequest.status
ORDER_STATUS = {"A": "active", "CA": "revoked", "CM": "completed", "DC": "revoked", "ER": "entered-in-error"}
ORDER_STATUS |= {"HD": "on-hold", "IP": "active", "RP": "revoked", "SC": "active"}
CONTROL_STATUS = {"NW": "active", "OK": "active", "RO": "active", "RL": "active", "XO": "active"}
CONTROL_STATUS |= {"XX": "active", "XR": "active", "PA": "active", "CH": "active", "SC": "active"}
CONTROL_STATUS |= {"CA": "revoked", "CR": "revoked", "OC": "revoked", "DC": "revoked", "OD": "revoked"}
CONTROL_STATUS |= {
    "DR": "revoked",
    "HD": "on-hold",
    "OH": "on-hold",
    "HR": "on-hold",
    "DE": "entered-in-error",
}
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine", "T": "urgent", "C": "urgent", "P": "urgent"}


@dataclass(frozen=True)
class OrderNumbers:
    """The placer and filler order numbers of an order group (empty when not sent)."""

    institution: str
    placer: str
    filler: str
    group: str = ""

    def placer_identifier(self) -> Json | None:
        """The placer number as an Identifier (type PLAC)."""
        return _identifier(PLACER_PREFIX, self.institution, self.placer, "PLAC") if self.placer else None

    def filler_identifier(self) -> Json | None:
        """The filler number as an Identifier (type FILL)."""
        return _identifier(ORDER_PREFIX, self.institution, self.filler, "FILL") if self.filler else None

    def identifiers(self) -> list[Json]:
        """Both numbers, placer first."""
        return [i for i in (self.placer_identifier(), self.filler_identifier()) if i is not None]

    def request_key(self) -> Json | None:
        """What finds the ServiceRequest: the placer number, else the filler number."""
        return self.placer_identifier() or self.filler_identifier()

    def report_key(self) -> Json | None:
        """What finds the result of the order: the filler number, else the placer number."""
        return self.filler_identifier() or self.placer_identifier()


def _identifier(prefix: str, institution: str, value: str, kind: str) -> Json:
    return {
        "type": {"coding": [coding(kind, "", IDENTIFIER_TYPE)]},
        "system": prefix + uri_name(institution),
        "value": value,
    }


def order_numbers(order: OrderGroup, institution: str) -> OrderNumbers:
    """ORC-2/ORC-3/ORC-4, completed from OBR-2/OBR-3 when the ORC is absent or leaves them empty."""
    orc, detail = order.orc, order.detail
    obr = detail if detail is not None and detail.name == "OBR" else None
    numbers = []
    for orc_field, obr_field in ((2, 2), (3, 3)):
        value = orc.get(orc_field).strip() if orc is not None else ""
        if not value and obr is not None:
            value = obr.get(obr_field).strip()
        numbers.append(value)
    group = orc.get(4).strip() if orc is not None else ""
    return OrderNumbers(institution, numbers[0], numbers[1], group)


def order_status(orc: Segment | None, default: str) -> str:
    """ORC-5 (table 0038), else ORC-1 (table 0119), as ServiceRequest.status; ``default`` when neither maps."""
    if orc is None:
        return default
    return ORDER_STATUS.get(orc.get(5).strip().upper()) or CONTROL_STATUS.get(
        orc.get(1).strip().upper(), default
    )


def section_category(obr: Segment | None) -> list[Json]:
    """OBR-24 (diagnostic service section, table 0074) as a category."""
    section = obr.get(24).strip().upper() if obr is not None else ""
    return [{"coding": [coding(section, "", SECTION)]}] if section else []


def _code(order: OrderGroup, institution: str) -> Json | None:
    detail = order.detail
    if detail is None:
        return None
    field = {"OBR": 4, "RXO": 1, "RQD": 2}.get(detail.name)
    if field is None:
        return None
    with reading(detail, field):
        return cwe_concept(detail.raw(field), detail.delimiters, institution)


def _priority(order: OrderGroup) -> str | None:
    tq1, obr = order.tq1, order.detail
    code = tq1.get(9).strip().upper() if tq1 is not None else ""
    if not code and obr is not None and obr.name == "OBR":
        code = obr.get(5).strip().upper()
    return _PRIORITY.get(code)


def _occurrence(order: OrderGroup, builder: BundleBuilder) -> Json:
    zone, tq1, obr = builder.ctx.zone, order.tq1, order.detail
    if tq1 is not None:
        period = {}
        for key, n in (("start", 7), ("end", 8)):
            with reading(tq1, n):
                when = ts_datetime(tq1.get(n), zone)
            if when:
                period[key] = when
        if period:
            return {"occurrencePeriod": period}
    if obr is not None and obr.name == "OBR":
        with reading(obr, 7):
            when = ts_datetime(obr.get(7), zone)
        if when:
            return {"occurrenceDateTime": when}
    return {}


def service_request(
    builder: BundleBuilder, order: OrderGroup, subject: Subject, numbers: OrderNumbers, status: str
) -> Json:
    """The ServiceRequest an order group describes (without specimens and supporting observations)."""
    institution, orc, obr = builder.ctx.institution, order.orc, order.detail
    request: Json = {"resourceType": "ServiceRequest", "identifier": numbers.identifiers()}
    if numbers.group:
        request["requisition"] = {"system": GROUP_PREFIX + uri_name(institution), "value": numbers.group}
    request |= {"status": status, "intent": "order"}
    category = section_category(obr if obr is not None and obr.name == "OBR" else None)
    if category:
        request["category"] = category
    priority = _priority(order)
    if priority:
        request["priority"] = priority
    code = _code(order, institution)
    if code:
        request["code"] = code
    request["subject"] = reference(subject.patient.full_url)
    if subject.encounter is not None:
        request["encounter"] = reference(subject.encounter.full_url)
    request |= _occurrence(order, builder)
    if orc is not None:
        with reading(orc, 9):
            authored = ts_datetime(orc.get(9), builder.ctx.zone)
        if authored:
            request["authoredOn"] = authored
    requester = _requester(order, institution)
    if requester is not None:
        request["requester"] = requester
    if obr is not None and obr.name == "OBR":
        reasons = [cwe_concept(raw, obr.delimiters, institution) for raw in obr.repetitions(31)]
        if any(reasons):
            request["reasonCode"] = [r for r in reasons if r]
    annotations = notes(order.notes)
    if annotations:
        request["note"] = annotations
    return request


def _requester(order: OrderGroup, institution: str) -> Json | None:
    for seg, n in (
        (order.orc, 12),
        (order.detail if order.detail is not None and order.detail.name == "OBR" else None, 16),
    ):
        if seg is not None and seg.repetitions(n):
            who = xcn_reference(seg.repetitions(n)[0], seg.delimiters, institution)
            if who is not None:
                return who
    return None


def map_order(builder: BundleBuilder, order: OrderGroup, subject: Subject) -> str:
    """One order group → ServiceRequest (with its Specimens and order-entry Observations); its fullUrl."""
    institution = builder.ctx.institution
    numbers = order_numbers(order, institution)
    key = numbers.request_key()
    if key is None:
        raise missing(order.first, 2, "placer order number")
    orc = order.orc
    request = service_request(builder, order, subject, numbers, order_status(orc, "active"))
    specimens = [
        map_specimen(builder, group.spm, subject, f"{key['value']}-SPM{n}")
        for n, group in enumerate(order.specimens, 1)
    ]
    if specimens:
        request["specimen"] = [reference(url) for url in specimens]
    observed = [*order.observations, *(o for group in order.specimens for o in group.observations)]
    supporting = [map_observation(builder, o.obx, subject.patient, subject.encounter) for o in observed]
    if supporting:
        request["supportingInfo"] = [reference(url) for url in supporting]
    new_order = orc is None or orc.get(1).strip().upper() in ("NW", "")
    write = builder.create if new_order else builder.put
    return write(request, identifier_criteria(key), location(builder.message, order.first), focus=True)


def map_orders(message: Message, ctx: MappingContext) -> Mapped:
    """ORM^O01 / OML^O21: the Patient, its visit, and a ServiceRequest per order group."""
    builder = start(message, ctx)
    keys: list[str] = []
    orders = 0
    for group in patient_groups(message):
        subject = map_subject(builder, group)
        keys.append(subject.patient.key)
        for order in group.orders:
            map_order(builder, order, subject)
            orders += 1
    if not orders:
        raise MappingError(
            f"the {message.message_type} message has no ORC segment", segment="ORC", hl7_code="100"
        )
    return builder.mapped(keys)


MAPPERS: dict[str, Mapper] = {"ORM^O01": map_orders, "OML^O21": map_orders}
