"""WS/T 483 HSDC00.05 转诊（院）记录: a referral ServiceRequest, with the diagnoses, signs and drugs sent along."""

from __future__ import annotations

from typing import Any

from rhip.documents.cda.body import read_body
from rhip.documents.cda.context import Extraction
from rhip.documents.cda.parties import ORGANIZATION_OID
from rhip.documents.cda.statements import element_id, statement, value_of
from rhip.documents.cda.values import string
from rhip.documents.cda.xmlpath import Element, child

REFERRAL_REASON = "DE06.00.177.00"  # 转诊原因 (inferred from the 2012 draft sample)
TARGET_NAME = "DE08.10.013.00"  # 转入医疗卫生机构名称
_REFERRAL = {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}


def referral(x: Extraction) -> None:
    """The shared readers, then the ServiceRequest: reason, destination, time and the referring doctor."""
    body = read_body(x)
    reason_entry: Element | None = None
    reason, target_name, when = "", "", None
    for section in x.sections():
        for entry in section.entries():
            obs = statement(entry)
            element = element_id(obs)
            if element == REFERRAL_REASON and reason_entry is None:
                reason_entry, reason = entry, string(value_of(obs))
                when = x.time(child(obs, "effectiveTime"))
            elif element == TARGET_NAME and not target_name:
                target_name = string(value_of(obs))
    recipient = x.doc.header.recipient
    if reason_entry is None and recipient is None:
        return
    reason_codes: list[dict[str, Any]] = [
        {
            "coding": [
                c
                for c in r["code"].get("coding", [])
                if c.get("system", "").endswith("2.16.156.10011.2.3.3.11")
            ]
        }
        for r, _, _ in body.conditions
        if reason and r["code"].get("text") in reason.split("；")
    ]
    reason_codes = [r for r in reason_codes if r["coding"]]
    if reason:
        if reason_codes:
            reason_codes[0]["text"] = reason
        else:
            reason_codes = [{"text": reason}]
    performer: dict[str, Any] = {}
    if recipient is not None and recipient.code:
        performer["identifier"] = {"system": f"urn:oid:{ORGANIZATION_OID}", "value": recipient.code}
    name = (recipient.name if recipient else "") or target_name
    if name:
        performer["display"] = name
    body_el = x.doc.body
    anchor = reason_entry if reason_entry is not None else body_el if body_el is not None else x.doc.root
    request = x.new(
        "ServiceRequest", anchor, status="completed", intent="order",
        category=[{"coding": [_REFERRAL], "text": "转诊"}], code={"coding": [_REFERRAL], "text": "转诊（院）"},
        authoredOn=when or x.doc.header.effective_time, requester=x.practitioner(),
        performer=[performer] if performer else None, reasonCode=reason_codes or None,
    )  # fmt: skip
    x.add(request)
