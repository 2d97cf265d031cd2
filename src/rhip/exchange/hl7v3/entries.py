"""Transaction entries every registration builds: the institution, upserts by identifier."""

from __future__ import annotations

from typing import Any

from rhip.exchange.hl7v3.context import Context, first, meta
from rhip.exchange.hl7v3.errors import MissingElement
from rhip.exchange.hl7v3.fhir import criteria
from rhip.exchange.hl7v3.xmlread import Element, find, path_of

ORGANIZATION_SYSTEM = "urn:oid:2.16.156.10011.1.5"


def institution_entry(
    ctx: Context, code: str, name: str = "", source: str = ""
) -> tuple[str, dict[str, Any]]:
    """(fullUrl, entry) creating the institution's Organization unless one with its code exists."""
    url = ctx.uuid_url()
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "meta": meta(ctx, source or code),
        "identifier": [{"system": ORGANIZATION_SYSTEM, "value": code}],
        "active": True,
    }
    if name:
        resource["name"] = name
    request = {
        "method": "POST",
        "url": "Organization",
        "ifNoneExist": criteria(identifier=f"{ORGANIZATION_SYSTEM}|{code}"),
    }
    return url, {"fullUrl": url, "resource": resource, "request": request}


def upsert_entry(url: str, resource: dict[str, Any], **match: str) -> dict[str, Any]:
    """A conditional update (``PUT Type?criteria``): creates the resource or replaces the one matched."""
    rtype = resource["resourceType"]
    return {
        "fullUrl": url,
        "resource": resource,
        "request": {"method": "PUT", "url": f"{rtype}?{criteria(**match)}"},
    }


def subject(act: Element, *names: str) -> Element:
    """The registration's subject (``subject/registrationRequest/subject1/<name>``, or the Event form)."""
    for registration in ("registrationRequest", "registrationEvent"):
        for name in names:
            found = find(act, f"subject/{registration}/subject1/{name}")
            if found is not None:
                return found
    where = f"{path_of(act)}/subject/registrationRequest/subject1/{names[0]}"
    raise MissingElement(f"{where} is required", location=where)


def registration(act: Element) -> Element | None:
    """``subject/registrationRequest`` (or ``registrationEvent``)."""
    return first(act, "subject/registrationRequest", "subject/registrationEvent")
