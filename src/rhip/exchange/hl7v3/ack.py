"""Answers: the transmission wrapper, MCCI_IN000002UV01 acknowledgements and query acknowledgements.

Every answer names the request in ``acknowledgement/targetMessage/id``. ``AA`` carries an informational
detail; ``AE``/``AR`` carry the error's stable code, a text naming the element, and the element's path in
``location``. Layout of the samples' response stylesheets (cn-standards.md §1, LangZhongGit ``H0201Rp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v3.datatypes import format_ts
from rhip.exchange.hl7v3.header import DEVICE_ROOT, INTERACTION_ID_ROOT, MESSAGE_ID_ROOT, Header
from rhip.exchange.hl7v3.xmlread import II, Element, child, ids
from rhip.exchange.hl7v3.xmlwrite import add, add_ids, root_element

ACK_INTERACTION = "MCCI_IN000002UV01"
ERROR_CODE_SYSTEM = "RHIP error codes"


@dataclass(frozen=True)
class AckDetail:
    """What an acknowledgement says: its code (AA/AE/AR), a text and, for errors, the code and location."""

    type_code: str
    text: str
    error_code: str = ""
    location: str = ""


@dataclass(frozen=True)
class Sending:
    """Who answers and when: this platform's device id, the answer's message id, the time and the zone."""

    device: str
    message_id: str
    now: datetime
    zone: ZoneInfo


def _device(parent: Element, role: str, type_code: str, device_id: str) -> None:
    device = add(add(parent, role, typeCode=type_code), "device", classCode="DEV", determinerCode="INSTANCE")
    add_ids(device, [{"root": DEVICE_ROOT, "extension": device_id}])


def answer_root(interaction: str, request: Header, sending: Sending, detail: AckDetail) -> Element:
    """The wrapper of an answer to ``request``, up to and including its acknowledgement."""
    root = root_element(interaction)
    add(root, "id", root=MESSAGE_ID_ROOT, extension=sending.message_id)
    add(root, "creationTime", value=format_ts(sending.now, sending.zone))
    add(root, "interactionId", root=INTERACTION_ID_ROOT, extension=interaction)
    add(root, "processingCode", code=request.processing_code or "P")
    add(root, "processingModeCode", code="T")
    add(root, "acceptAckCode", code="NE")
    _device(root, "receiver", "RCV", request.sender)
    _device(root, "sender", "SND", request.receiver or sending.device)
    ack = add(root, "acknowledgement", typeCode=detail.type_code)
    if request.message_id:
        add(
            add(ack, "targetMessage"),
            "id",
            root=request.message_id_root or MESSAGE_ID_ROOT,
            extension=request.message_id if request.message_id != request.message_id_root else None,
        )
    info = add(ack, "acknowledgementDetail", typeCode="I" if detail.type_code == "AA" else "E")
    if detail.error_code:
        add(info, "code", code=detail.error_code, codeSystemName=ERROR_CODE_SYSTEM)
    add(info, "text", value=detail.text)
    if detail.location:
        add(info, "location").text = detail.location
    return root


def add_query_ack(act: Element, query_id: II | None, returned: int, total: int) -> Element:
    """The ``queryAck`` of a query answer: OK with the counts, or NF when nothing matched."""
    ack = add(act, "queryAck")
    if query_id is not None:
        add(ack, "queryId", root=query_id.root, extension=query_id.extension)
    add(ack, "queryResponseCode", code="OK" if returned else "NF")
    add(ack, "resultTotalQuantity", value=str(total))
    add(ack, "resultCurrentQuantity", value=str(returned))
    add(ack, "resultRemainingQuantity", value=str(max(total - returned, 0)))
    return ack


def query_id_of(query: Element | None) -> II | None:
    """The ``queryId`` of a query's parameter element, echoed in the answer."""
    found = ids(child(query, "queryId")) if query is not None else []
    return found[0] if found else None
