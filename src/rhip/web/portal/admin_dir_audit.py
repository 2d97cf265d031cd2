"""审计查询: the audit log searched by patient, user, institution and time, a page at a time, and the
hash chain verified on demand.

The search is a FHIR ``GET AuditEvent`` as the administrator, through the security layer: the search is
itself recorded in the log (subtype ``search-type`` with its query), like any other read of it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rhip.registries.fhir_port import matches
from rhip.web.portal.admin_dir_common import SHANGHAI, admin, admin_form, local_time, next_page
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX

HERE = "/admin/audit"
PAGE_SIZE = 50
SUBJECT_SYSTEM = "urn:rhip:subject"
INSTITUTION_SYSTEM = "urn:oid:2.16.156.10011.1.5"
RHIP_SUBTYPE = "urn:rhip:interaction"
OPERATION_SYSTEM = "urn:rhip:operation"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
FIELDS = ("patient", "user", "institution", "since", "until", "outcome")
OUTCOMES = ("0", "4", "8", "12")
ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,140}$")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def audit_query(f: dict[str, str]) -> list[tuple[str, str]]:
    """The AuditEvent search of the form's fields; PortalError 400 for a field that is not valid."""
    params: list[tuple[str, str]] = []
    if f["patient"]:
        if not ID.match(f["patient"].removeprefix("Patient/")):
            raise PortalError(400, "dir.audit.bad_patient")
        params.append(("patient", f["patient"].removeprefix("Patient/")))
    if f["user"]:
        subject = f["user"] if ":" in f["user"] else f"user:{f['user']}"
        if not SUBJECT.match(subject):
            raise PortalError(400, "dir.audit.bad_user")
        params.append(("agent:identifier", f"{SUBJECT_SYSTEM}|{subject}"))
    if f["institution"]:
        if not CODE.match(f["institution"]):
            raise PortalError(400, "dir.audit.bad_institution")
        params.append(("agent:identifier", f"{INSTITUTION_SYSTEM}|{f['institution']}"))
    if f["outcome"]:
        if f["outcome"] not in OUTCOMES:
            raise PortalError(400, "dir.audit.bad_outcome")
        params.append(("outcome", f["outcome"]))
    for name, prefix, shift in (("since", "ge", 0), ("until", "lt", 1)):
        if f[name]:
            day = _day(f[name])
            if day is None:
                raise PortalError(400, "dir.audit.bad_date")
            start = datetime.combine(day + timedelta(days=shift), datetime.min.time(), SHANGHAI)
            params.append(("date", prefix + start.isoformat()))
    return params


def _codes(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or [])


def audit_row(event: dict[str, Any]) -> dict[str, Any]:
    """What the results table shows of one AuditEvent."""
    who = role = institution = purpose = ""
    for agent in event.get("agent") or []:
        ident = (agent.get("who") or {}).get("identifier") or {}
        if agent.get("requestor"):
            who = str(ident.get("value", ""))
            role = next((str(c.get("code")) for r in agent.get("role") or [] for c in _codes(r)), "")
            purpose = next(
                (str(c.get("code")) for p in agent.get("purposeOfUse") or [] for c in _codes(p)), ""
            )
        elif ident.get("system") == INSTITUTION_SYSTEM:
            institution = str(ident.get("value", ""))
    codings = {str(c.get("system")): str(c.get("code")) for c in event.get("subtype") or []}
    subtype = codings.get(RHIP_SUBTYPE) or codings.get(OPERATION_SYSTEM) or codings.get(INTERACTION, "")
    details = [
        f"{d.get('type')}: {d.get('valueString')}"
        for e in event.get("entity") or []
        for d in e.get("detail") or []
    ]
    patients = [
        str((e.get("what") or {}).get("reference", "")).removeprefix("Patient/")
        for e in event.get("entity") or []
        if str((e.get("what") or {}).get("reference", "")).startswith("Patient/")
    ]
    return {
        "id": event.get("id", ""),
        "when": local_time(event.get("recorded")),
        "who": who,
        "role": role,
        "institution": institution,
        "action": str(event.get("action", "")),
        "subtype": subtype,
        "outcome": str(event.get("outcome", "")),
        "reason": str(event.get("outcomeDesc", "")),
        "patients": patients,
        "purpose": purpose,
        "details": details,
    }


def routes(portal: Portal) -> list[Route]:
    """审计查询 routes."""

    def render(viewer: Viewer, request: Request, status: int = 200, **extra: Any) -> Response:
        context: dict[str, Any] = {
            "f": dict.fromkeys(FIELDS, ""),
            "results": None,
            "next_link": None,
            "error_key": "",
            "verify": None,
            **extra,
        }
        template = (
            "admin_dir/audit_verify.html"
            if request.headers.get("hx-request") and extra.get("verify")
            else "admin_dir/audit.html"
        )
        return portal.page(
            viewer, template, status=status, active=HERE, here=request.url.path, outcomes=OUTCOMES, **context
        )

    async def search(request: Request) -> Response:
        """The search form and, once asked, a page of matching entries (newest first)."""
        viewer = await admin(portal, request)
        q = request.query_params
        f = {k: q.get(k, "").strip()[:140] for k in FIELDS}
        if "search" not in q:
            return render(viewer, request, f=f)
        try:
            params = audit_query(f)
        except PortalError as error:
            return render(viewer, request, 400, f=f, error_key=error.key)
        page = q.get("page") or None
        query = [*params, ("_count", str(PAGE_SIZE)), *([("_page", page)] if page else [])]

        def find() -> dict[str, Any] | None:
            security = portal.current().security
            if security is not None and page is None:
                # Accesses are written in batches (within a second): the search shows them up to now.
                security.audit.flush()
            return portal.fhir("GET", "AuditEvent", query)

        bundle = await portal.run(viewer, find)
        token = next_page(bundle)
        next_link = None
        if token:
            next_link = f"{PREFIX}{HERE}?" + urlencode({**f, "search": "1", "page": token})
        rows = [audit_row(e) for e in matches(bundle) if e.get("resourceType") == "AuditEvent"]
        return render(viewer, request, f=f, results=rows, next_link=next_link, first_page=page is None)

    async def verify(request: Request) -> Response:
        """Verify the audit log's hash chain (what ``rhip audit verify`` checks); its result."""
        viewer, _ = await admin_form(portal, request)
        security = portal.current().security
        if security is None:
            raise PortalError(404, "error.not_found")
        report = await portal.run(viewer, security.audit.verify)
        result = {
            "ok": report.ok,
            "count": report.head_seq,
            "head": report.head_hash or "",
            "problems": report.messages[:50],
            "more": max(0, len(report.messages) - 50),
        }
        return render(viewer, request, verify=result)

    return [
        Route(f"{PREFIX}{HERE}", guarded(portal, search), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/verify", guarded(portal, verify), methods=["POST"]),
    ]
