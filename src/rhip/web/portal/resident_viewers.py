"""Who viewed my record (公众门户): the audit log's reads and searches of the resident's records by others.

The log is asked through the FHIR door as the resident (``GET AuditEvent?patient=…``): the security layer
limits the answer to entries naming the resident's own records and strips callers' network addresses,
tokens and queries (``public_view``), and the question itself is audited. The resident's own reads and
the platform's own processes are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rhip.security.audit.balp import INSTITUTION_SYSTEM, SUBJECT_SYSTEM
from rhip.security.principal import Role
from rhip.web.portal.core import Portal
from rhip.web.portal.record_shape import local_time

GLASS_PURPOSE = "ETREAT"
GLASS_DETAIL = "break-glass-reason"
VIEWER_COUNT = 100  # entries of other people's roles shown (newest first)
PROXY_COUNT = 50  # entries of residents' accounts (a parent's proxy account), the viewer's own left out
# Roles whose reads count as someone viewing the record (the platform's own processes do not).
OTHER_ROLES = tuple(r.value for r in Role if r not in (Role.PLATFORM, Role.RESIDENT))
INTERACTIONS = {"read", "vread", "search-type", "search-system", "search", "operation", "history-instance"}


def who_viewed(portal: Portal, records: Iterable[str], me: str) -> list[dict[str, Any]]:
    """The accesses to these Patient records by anyone but the subject ``me``, newest first (call inside
    :meth:`Portal.run`)."""
    patients = ",".join(f"Patient/{r}" for r in records)
    if not patients:
        return []
    base = [("patient", patients), ("action", "R,E"), ("outcome", "0")]
    events = _events(portal, [*base, ("agent-role", ",".join(OTHER_ROLES)), ("_count", str(VIEWER_COUNT))])
    proxies = _events(portal, [*base, ("agent-role", Role.RESIDENT.value), ("_count", str(PROXY_COUNT))])
    rows = [shape_event(e) for e in [*events, *proxies]]
    rows = [r for r in rows if r["subject"] and r["subject"] != me]
    rows.sort(key=lambda r: str(r["recorded"]), reverse=True)
    names = institution_names(portal, {str(r["institution"]) for r in rows} - {""})
    for r in rows:
        r["institution_name"] = names.get(str(r["institution"]), str(r["institution"]))
    return rows


def _events(portal: Portal, query: list[tuple[str, str]]) -> list[dict[str, Any]]:
    bundle = portal.fhir("GET", "AuditEvent", query) or {}
    return [e["resource"] for e in bundle.get("entry", []) if "resource" in e]


def shape_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the viewers table from an AuditEvent as residents see it (no addresses, no queries)."""
    subject, role, institution, purpose = "", "", "", ""
    for agent in event.get("agent") or ():
        ident = (agent.get("who") or {}).get("identifier") or {}
        if agent.get("requestor") and ident.get("system") == SUBJECT_SYSTEM:
            subject = str(ident.get("value", ""))
            role = _first_code(agent.get("role") or ())
            purpose = _first_code(agent.get("purposeOfUse") or ())
        elif ident.get("system") == INSTITUTION_SYSTEM:
            institution = str(ident.get("value", ""))
    purpose = purpose or _first_code(event.get("purposeOfEvent") or ())
    interaction = next(
        (
            str(c.get("code"))
            for c in event.get("subtype") or ()
            if c.get("code") in INTERACTIONS or str(c.get("code", "")).startswith("$")
        ),
        "",
    )
    operation = next(
        (str(c.get("code")) for c in event.get("subtype") or () if str(c.get("code", "")).startswith("$")),
        "",
    )
    types: list[str] = []
    reason = ""
    for entity in event.get("entity") or ():
        what = entity.get("what") or {}
        kind = str(what.get("type") or str(what.get("reference") or "").partition("/")[0])
        if kind and kind != "Patient" and kind not in types:
            types.append(kind)
        for detail in entity.get("detail") or ():
            if detail.get("type") == GLASS_DETAIL and detail.get("valueString"):
                reason = str(detail["valueString"])
    kind, _, name = subject.partition(":")
    return {
        "id": str(event.get("id", "")),
        "recorded": str(event.get("recorded", "")),
        "when": local_time(event.get("recorded")),
        "subject": subject,
        "account": name or subject,
        "client": kind == "client",
        "role": role,
        "institution": institution,
        "purpose": purpose,
        "glass": purpose == GLASS_PURPOSE,
        "reason": reason,
        "interaction": "operation" if operation else interaction,
        "operation": operation,
        "types": types,
    }


def _first_code(concepts: Iterable[Mapping[str, Any]]) -> str:
    for concept in concepts:
        for coding in concept.get("coding") or ():
            if coding.get("code"):
                return str(coding["code"])
    return ""


def institution_names(portal: Portal, codes: set[str]) -> dict[str, str]:
    """Organization names by institution code (医疗机构代码), from the registry (one search)."""
    if not codes:
        return {}
    found = portal.search(
        "Organization",
        identifier=",".join(f"{INSTITUTION_SYSTEM}|{c}" for c in sorted(codes)),
        _elements="identifier,name",
        _count=len(codes),
    )
    names: dict[str, str] = {}
    for org in found:
        for ident in org.get("identifier") or ():
            if ident.get("system") == INSTITUTION_SYSTEM and ident.get("value") in codes:
                names[str(ident["value"])] = str(org.get("name") or ident["value"])
    return names
