"""The resident index's review queue (主索引待审): open cases, a case's records side by side, decisions.

Every read and decision goes through the EMPI's FHIR operations ($empi-review-list, $empi-review-show,
$empi-review-decide, $empi-link/unlink/merge/unmerge, $empi-query-links) via :meth:`Portal.fhir`, so the
operation gate refuses other roles and audits each invocation. The actor of a decision is the viewer's
account (the platform's principal), never a form field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.security.masking import mask_id_number, mask_phone, mask_text
from rhip.security.principal import Role
from rhip.web.portal.admin_ops_params import PARTS, flat, one, params, path_id, unparts
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX

PAGE = "/admin/review"
DECISIONS = {"link": "link", "no-link": "separate"}
ACTIONS = ("unlink", "merge", "unmerge")
MRN_PREFIX = "urn:rhip:mrn:"
# The rows of the comparison: (message key, how to read the field from a record).
FIELDS: tuple[tuple[str, str], ...] = (
    ("ops.field.name", "name"),
    ("ops.field.pinyin", "pinyin"),
    ("ops.field.sex", "sex"),
    ("ops.field.birth_date", "birth_date"),
    ("ops.field.id_number", "id_number"),
    ("ops.field.phone", "phone"),
    ("ops.field.address", "address"),
    ("ops.field.health_card", "health_card"),
    ("ops.field.institution", "institution"),
)


def routes(portal: Portal) -> list[Route]:
    """The review queue's routes."""

    async def queue(request: Request) -> Response:
        """The open cases (or all, ``?status=all``), newest first."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        status = request.query_params.get("status", "open")
        if status not in ("open", "all", "linked", "separate", "stale"):
            status = "open"
        answer = await portal.run(
            viewer,
            lambda: portal.fhir("GET", "Patient/$empi-review-list", [("status", status), ("_count", "100")]),
        )
        parts = unparts(answer)
        cases = [flat(item) for item in parts.get("item", [])]
        return portal.page(
            viewer,
            "admin_ops/review_list.html",
            active=PAGE,
            here=request.url.path,
            cases=cases,
            total=one(parts, "total", 0),
            shown_status=status,
            done=request.query_params.get("done", ""),
        )

    async def case(request: Request) -> Response:
        """One case: the records side by side, the score and its reasons, the decision form."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        review_id = _case_id(request)
        context = await portal.run(viewer, lambda: _case(portal, viewer, review_id))
        return portal.page(
            viewer,
            "admin_ops/review_case.html",
            active=PAGE,
            here=request.url.path,
            done=request.query_params.get("done", ""),
            merged=request.query_params.get("merged", "")[:64],
            **context,
        )

    async def decide(request: Request) -> Response:
        """Link or keep apart (the case leaves the open list)."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        form = await request.form()
        await portal.check_csrf(request, viewer, form)
        review_id = _case_id(request)
        decision = DECISIONS.get(str(form.get("decision", "")))
        if decision is None:
            raise PortalError(400, "ops.review.bad_decision")
        body = params(("id", review_id), ("decision", decision), ("actor", viewer.principal.subject))
        await portal.run(viewer, lambda: portal.fhir("POST", "Patient/$empi-review-decide", body=body))
        return RedirectResponse(f"{PREFIX}{PAGE}?" + urlencode({"done": decision}), status_code=303)

    async def act(request: Request) -> Response:
        """Unlink a record, merge two masters or undo a merge (from a case page)."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        form = await request.form()
        await portal.check_csrf(request, viewer, form)
        review_id = _case_id(request)
        action = str(form.get("action", ""))
        actor = ("actor", viewer.principal.subject)
        if action == "unlink":
            body = params(("patient", _field(form, "patient")), actor)
        elif action == "merge":
            body = params(("from", _field(form, "from")), ("into", _field(form, "into")), actor)
        elif action == "unmerge":
            body = params(("master", _field(form, "master")), actor)
        else:
            raise PortalError(400, "ops.review.bad_action")
        await portal.run(viewer, lambda: portal.fhir("POST", f"Patient/$empi-{action}", body=body))
        query = {"done": action, **({"merged": _field(form, "from")} if action == "merge" else {})}
        target = f"{PREFIX}{PAGE}/{review_id}?" + urlencode(query)
        return RedirectResponse(target, status_code=303)

    return [
        Route(PREFIX + PAGE, guarded(portal, queue)),
        Route(PREFIX + PAGE + "/{id:int}", guarded(portal, case)),
        Route(PREFIX + PAGE + "/{id:int}/decide", guarded(portal, decide), methods=["POST"]),
        Route(PREFIX + PAGE + "/{id:int}/action", guarded(portal, act), methods=["POST"]),
    ]


def _case_id(request: Request) -> int:
    value = path_id(request.path_params["id"])
    if value is None:
        raise PortalError(404, "error.not_found")
    return value


def _field(form: Any, name: str) -> str:
    value = str(form.get(name, "")).strip()
    if not value or len(value) > 64:
        raise PortalError(400, "ops.review.bad_action")
    return value


def _case(portal: Portal, viewer: Viewer, review_id: int) -> dict[str, Any]:
    """What the case page shows (inside :meth:`Portal.run`)."""
    shown = unparts(portal.fhir("GET", "Patient/$empi-review-show", [("id", str(review_id))]))
    record = flat(one(shown, "record", {}))
    candidates = [unparts_candidate(c) for c in shown.get("candidate", [])]
    ids = [str(record.get("id", ""))] + [c["record"].get("id", "") for c in candidates]
    ids = [i for i in ids if i]
    patients = {p["id"]: p for p in portal.search("Patient", _id=",".join(ids), _count=len(ids) or 1)}
    masters = {pid: _master_of(portal, pid) for pid in ids}
    columns = [_column(record, patients.get(ids[0]) if ids else None, masters.get(ids[0] if ids else ""))]
    for c in candidates:
        rid = c["record"].get("id", "")
        columns.append(_column(c["record"], patients.get(rid), masters.get(rid), c["probability"]))
    rows = []
    for key, name in FIELDS:
        values = [col["fields"].get(name) for col in columns]
        if all(v is None for v in values):
            continue  # no record has it: nothing to compare
        agree = values[0] is not None and all(v == values[0] for v in values)
        if name == "id_number" and not viewer.sees_whole_ids():
            shown_values = [mask_id_number(v) if v else None for v in values]
        elif name == "phone" and not viewer.sees_whole_ids():
            shown_values = [mask_phone(v) if v else None for v in values]
        elif name in ("health_card", "institution") and not viewer.sees_whole_ids():
            shown_values = [mask_text(v) if v else None for v in values]
        elif name == "sex":
            shown_values = [f"ops.sex.{v}" if v else None for v in values]
        else:
            shown_values = values
        rows.append({"key": key, "agree": agree, "values": shown_values, "words": name == "sex"})
    reasons = _reasons(portal, candidates[0]["levels"] if candidates else {})
    return {
        "case": {
            "id": one(shown, "id"),
            "status": one(shown, "status"),
            "reason": one(shown, "reason"),
            "probability": one(shown, "probability"),
            "master": one(shown, "master"),
        },
        "columns": columns,
        "rows": rows,
        "reasons": reasons,
    }


def unparts_candidate(candidate: PARTS) -> dict[str, Any]:
    """A candidate of $empi-review-show: its record, comparison levels and probability."""
    return {
        "record": flat(one(candidate, "record", {})),
        "levels": flat(one(candidate, "levels", {})),
        "probability": one(candidate, "probability"),
    }


def _master_of(portal: Portal, patient_id: str) -> dict[str, Any]:
    links = unparts(portal.fhir("GET", "Patient/$empi-query-links", [("patient", patient_id)]))
    link = flat(one(links, "link", {}))
    return {"master": link.get("master"), "state": link.get("state"), "origin": link.get("origin")}


def _column(
    record: dict[str, Any],
    patient: dict[str, Any] | None,
    master: dict[str, Any] | None,
    probability: float | None = None,
) -> dict[str, Any]:
    """One record's column: its comparable fields, where it is from, its master."""
    address = " ".join(str(record[k]) for k in ("county", "township", "village", "street") if record.get(k))
    fields = {name: record.get(name) for _, name in FIELDS}
    fields["address"] = address or None
    fields["institution"] = _institution(patient)
    return {
        "id": record.get("id", ""),
        "fields": fields,
        "master": (master or {}).get("master"),
        "state": (master or {}).get("state"),
        "probability": probability,
    }


def _institution(patient: dict[str, Any] | None) -> str | None:
    """Where a record is from: its managing organisation or source, and its medical record number(s)."""
    if not patient:
        return None
    org = (patient.get("managingOrganization") or {}).get("reference") or (
        (patient.get("meta") or {}).get("source") or ""
    ).rpartition(":")[2]
    mrns = [
        f"{str(i['system']).removeprefix(MRN_PREFIX)}:{i.get('value', '')}"
        for i in patient.get("identifier", [])
        if str(i.get("system", "")).startswith(MRN_PREFIX)
    ]
    parts = [p for p in (str(org).removeprefix("Organization/"), " ".join(mrns)) if p]
    return " / ".join(parts) or None


def _reasons(portal: Portal, levels: dict[str, Any]) -> list[dict[str, Any]]:
    """Each comparison's level and its weight in the model (log2 m/u: what it adds to the score)."""
    empi = portal.current().empi
    model = empi.model if empi is not None else None
    out = []
    for name, label in levels.items():
        weight = None
        if model is not None and label != "missing":
            for level in model.levels.get(name, []):
                if level.label == label:
                    weight = round(level.weight, 2)
        out.append({"name": name, "label": label, "weight": weight})
    return out
