"""机构与人员: the form of one practitioner (Practitioner) — name, gender, birth date, practising licence
(执业证书编码) and active — saved with a FHIR PUT through ``Portal.fhir`` as the administrator, as the
institution form is. Fields the form does not hold (staff number, qualifications, telecom …) are kept;
the practitioner's roles (PractitionerRole: institution, department, title) are shown read-only."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.registries.fhir_port import matches
from rhip.registries.records import (
    FHIR_ID,
    PRACTITIONER_LICENCE,
    RowError,
    apply_practitioner,
    check_practitioner,
    practitioner_fields,
)
from rhip.web.portal.admin_dir_common import (
    admin,
    admin_form,
    refuse_if_changed,
    shown_again,
    version_of,
)
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX

HERE = "/admin/practitioners"
LIST = "/admin/institutions"
NEW = "new"  # the address of the form for a new practitioner
FORM_COLUMNS = ("name", "family", "given", "gender", "birth_date", "licence", "active")
GENDERS = ("male", "female", "other", "unknown")


def _valid_id(request: Request) -> str:
    """The path's practitioner id (a 404 page when it cannot be a FHIR id)."""
    pid = str(request.path_params["id"])
    if not FHIR_ID.match(pid):
        raise PortalError(404, "error.not_found")
    return pid


def _check(fields: dict[str, str], current: dict[str, Any] | None) -> dict[str, str]:
    """The form's fields cleaned (:class:`RowError` otherwise), with those it does not hold kept as stored
    (the staff number; no title or institution, so qualifications and roles are left alone)."""
    kept = practitioner_fields(current or {})
    clean = check_practitioner({**fields, "staff_no": kept["staff_no"]})
    return {**clean, "staff_no": kept["staff_no"], "title": "", "institution_code": "", "department": ""}


def _apply(current: dict[str, Any] | None, clean: dict[str, str]) -> dict[str, Any]:
    res = apply_practitioner(current, clean, None)
    for field, key in (("gender", "gender"), ("birth_date", "birthDate")):
        if not clean[field]:
            res.pop(key, None)  # the form emptied it
    if not clean["family"] and not clean["given"]:
        res["name"][0].pop("family", None)
        res["name"][0].pop("given", None)
    return res


def _role_rows(bundle: dict[str, Any] | None) -> list[dict[str, str]]:
    """The practitioner's roles: institution, department, title (code display) and whether active."""
    rows = []
    for res in matches(bundle):
        if res.get("resourceType") != "PractitionerRole":
            continue
        codes = [c for concept in res.get("code") or [] for c in concept.get("coding") or []]
        rows.append(
            {
                "organization": str((res.get("organization") or {}).get("reference", "")).removeprefix(
                    "Organization/"
                ),
                "department": ", ".join(str(s.get("text", "")) for s in res.get("specialty") or []),
                "title": str(codes[0].get("display") or codes[0].get("code", "")) if codes else "",
                "active": "true" if res.get("active", True) else "false",
            }
        )
    return rows


def _licence_taken(portal: Portal, licence: str, own_id: str) -> None:
    query = [("identifier", f"{PRACTITIONER_LICENCE}|{licence}"), ("_count", "2")]
    if any(p.get("id") != own_id for p in matches(portal.fhir("GET", "Practitioner", query))):
        raise PortalError(409, "dir.err.licence_taken", licence)


def routes(portal: Portal) -> list[Route]:
    """The practitioner form's routes."""

    def _page(
        viewer: Viewer,
        request: Request,
        pid: str,
        fields: dict[str, str],
        status: int = 200,
        roles: list[dict[str, str]] | None = None,
        **extra: Any,
    ) -> Response:
        return portal.page(
            viewer,
            "admin_dir/practitioner_edit.html",
            status=status,
            active=LIST,
            here=request.url.path,
            pid=pid,
            f=fields,
            genders=GENDERS,
            roles=roles or [],
            saved=request.query_params.get("saved") == "1",
            **{"error_field": "", "error_key": "", "error_detail": "", **extra},
        )

    def _roles(pid: str) -> list[dict[str, str]]:
        query = [("practitioner", f"Practitioner/{pid}"), ("_count", "50")]
        return _role_rows(portal.fhir("GET", "PractitionerRole", query))

    async def edit(request: Request) -> Response:
        """The form of one practitioner, with the roles it holds."""
        viewer = await admin(portal, request)
        pid = _valid_id(request)

        def read() -> tuple[dict[str, Any], list[dict[str, str]]]:
            return portal.fhir("GET", f"Practitioner/{pid}") or {}, _roles(pid)

        res, roles = await portal.run(viewer, read)
        fields = {**practitioner_fields(res), "version": version_of(res)}
        return _page(viewer, request, pid, fields, roles=roles)

    async def save(request: Request) -> Response:
        """Save the form with a FHIR PUT; errors (the page's checks, OperationOutcomes) shown by the form."""
        viewer, posted = await admin_form(portal, request)
        pid = _valid_id(request)
        fields = {k: posted.get(k, "") for k in FORM_COLUMNS}
        version = posted.get("version", "")

        def put() -> None:
            current = portal.fhir("GET", f"Practitioner/{pid}") or {}
            refuse_if_changed(current, version, "dir.prac.conflict")
            clean = _check(fields, current)
            _licence_taken(portal, clean["licence"], pid)
            portal.fhir("PUT", f"Practitioner/{pid}", body=_apply(current, clean))

        try:
            await portal.run(viewer, put)
        except RowError as error:
            shown = {**fields, "version": version}
            return _page(viewer, request, pid, shown, 400, error_field=error.field, error_key=error.key)
        except PortalError as error:
            shown = shown_again(error, "dir.prac.conflict", fields, version)
            return _page(
                viewer, request, pid, shown, error.status, error_key=error.key, error_detail=error.detail
            )
        return RedirectResponse(f"{PREFIX}{HERE}/{pid}/edit?saved=1", status_code=303)

    async def new_form(request: Request) -> Response:
        """An empty form for a practitioner not yet in the directory."""
        viewer = await admin(portal, request)
        return _page(viewer, request, NEW, dict.fromkeys(FORM_COLUMNS, "") | {"active": "true"})

    async def create(request: Request) -> Response:
        """Add a practitioner (FHIR POST, as the CSV import does); refused when the licence is taken."""
        viewer, posted = await admin_form(portal, request)
        fields = {k: posted.get(k, "") for k in FORM_COLUMNS}

        def post() -> str:
            clean = _check(fields, None)
            _licence_taken(portal, clean["licence"], "")
            saved = portal.fhir("POST", "Practitioner", body=_apply(None, clean)) or {}
            return str(saved.get("id", ""))

        try:
            new_id = await portal.run(viewer, post)
        except RowError as error:
            return _page(viewer, request, NEW, fields, 400, error_field=error.field, error_key=error.key)
        except PortalError as error:
            if error.status in (401, 403):
                raise
            return _page(
                viewer, request, NEW, fields, error.status, error_key=error.key, error_detail=error.detail
            )
        if not FHIR_ID.match(new_id):
            return RedirectResponse(f"{PREFIX}{LIST}?list=practitioners", status_code=303)
        return RedirectResponse(f"{PREFIX}{HERE}/{new_id}/edit?saved=1", status_code=303)

    return [
        Route(f"{PREFIX}{HERE}/{NEW}", guarded(portal, new_form), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/{NEW}", guarded(portal, create), methods=["POST"]),
        Route(f"{PREFIX}{HERE}/{{id}}/edit", guarded(portal, edit), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/{{id}}/edit", guarded(portal, save), methods=["POST"]),
    ]
