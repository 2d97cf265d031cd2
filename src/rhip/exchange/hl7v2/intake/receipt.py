"""Receipts: the MessageHeader each accepted message leaves, and how a retransmission finds it.

A receipt's id is derived from the sending facility, the sending application and MSH-10, so that a
retransmission of the same message looks up one id. It is written in the same transaction as the
message's data; its ``meta.lastUpdated`` is the commit, which the acknowledgement's MSH-7 carries, so that
the retransmission's ACK is the same bytes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from rhip.exchange.hl7v2.mapping.base import source_uri
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.rest.service import FhirService

EVENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0003"
CONTROL_ID_EXTENSION = "urn:rhip:ext:v2-control-id"
MESSAGE_TYPE_EXTENSION = "urn:rhip:ext:v2-message-type"
INSTITUTION_SYSTEM = "urn:oid:2.16.156.10011.1.5"


def receipt_id(facility: str, application: str, control_id: str) -> str:
    """The MessageHeader id of a message (a FHIR id: 43 characters)."""
    digest = hashlib.sha256(f"{facility}|{application}|{control_id}".encode()).hexdigest()
    return f"v2-{digest[:40]}"


def message_header(
    rid: str,
    *,
    facility: str,
    application: str,
    control_id: str,
    message_type: str,
    trigger: str,
    focus: list[str],
    channel: str = "v2",
) -> dict[str, Any]:
    """The receipt of one accepted message; ``focus`` are fullUrls or references of its main resources."""
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": rid,
        "meta": {"source": source_uri(channel, facility)},
        "extension": [
            {"url": CONTROL_ID_EXTENSION, "valueString": control_id},
            {"url": MESSAGE_TYPE_EXTENSION, "valueString": message_type},
        ],
        "eventCoding": {"system": EVENT_SYSTEM, "code": trigger or "UNKNOWN"},
        "sender": {
            "type": "Organization",
            "identifier": {"system": INSTITUTION_SYSTEM, "value": facility},
        },
        "source": {"endpoint": f"urn:rhip:v2:{quote(facility, safe='')}"},
    }
    if application:
        header["source"]["name"] = application
    if focus:
        header["focus"] = [{"reference": url} for url in focus]
    return header


def instant(value: str) -> datetime:
    """A FHIR instant as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def committed_receipts(fhir: FhirService, ids: list[str]) -> dict[str, datetime]:
    """The receipts among ``ids`` that exist, with the time each was committed."""
    found: dict[str, datetime] = {}
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        response = fhir.handle(
            FhirRequest(
                "GET",
                "MessageHeader",
                query=[("_id", ",".join(chunk)), ("_count", str(len(chunk)))],
                headers={"accept": "application/fhir+json"},
            )
        )
        if response.status != 200 or response.body is None:
            raise RuntimeError(f"receipt lookup failed with status {response.status}")
        for entry in orjson.loads(response.body).get("entry", []):
            resource = entry.get("resource") or {}
            updated = (resource.get("meta") or {}).get("lastUpdated")
            if resource.get("id") and updated:
                found[resource["id"]] = instant(updated)
    return found
