"""机构与人员: institutions (Organization) and practitioners (Practitioner) — list with search and paging,
edit an institution, CSV import and export. Reads and writes go through ``Portal.fhir`` as the
administrator, so the FHIR service validates, the security layer decides and the audit log records."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.registries.csv_io import (
    MAX_BYTES,
    FileProblem,
    RowResult,
    columns_of,
    export_csv,
    import_rows,
    read_rows,
    rows_of,
)
from rhip.registries.fhir_port import FhirCall, FhirRefused, matches
from rhip.registries.records import (
    INSTITUTION_CODE,
    KINDS,
    ORGANIZATION_COLUMNS,
    PRACTITIONER_COLUMNS,
    RowError,
    apply_org,
    check_org,
    org_fields,
    practitioner_fields,
)
from rhip.web.portal.admin_dir_common import (
    FORM_PART,
    admin,
    admin_form,
    next_page,
    refuse_if_changed,
    shown_again,
    version_of,
)
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX

PAGE_SIZE = 20
EXPORT_LIMIT = 5000
HERE = "/admin/institutions"
NEW = "new"  # the address of the form for a new institution
IMPORT_TYPES = {
    "organizations": "Organization",
    "practitioners": "Practitioner",
    "locations": "Location",
    "services": "HealthcareService",
}
TOKEN_LIKE = re.compile(r"^[A-Za-z0-9._-]+$")


def _kind(value: str | None) -> str:
    return "practitioners" if value == "practitioners" else "organizations"


def _type(kind: str) -> str:
    return IMPORT_TYPES.get(kind, "Organization")


def _import_kind(value: str) -> str:
    # Places and services are imported here too; the lists show institutions and practitioners only.
    return value if value in IMPORT_TYPES else "organizations"


def _refusing(portal: Portal) -> FhirCall:
    """``Portal.fhir`` as the registries' CSV import calls it: a refusal is a refused row, not a page error."""

    def call(
        method: str, path: str, query: Iterable[tuple[str, str]] = (), body: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        try:
            return portal.fhir(method, path, query, body)
        except PortalError as error:
            raise FhirRefused(error.status, error.key, error.detail) from None

    return call


def _query(kind: str, q: str, count: int, page: str | None) -> list[tuple[str, str]]:
    params = [("_count", str(count))]
    if kind == "practitioners":
        params.append(("_revinclude", "PractitionerRole:practitioner"))
    if q:
        # A code or number (institution code, USCC, licence, staff number) finds by identifier.
        params.append(("identifier", q) if TOKEN_LIKE.match(q) else ("name:contains", q))
    if page:
        params.append(("_page", page))
    return params


def _rows(kind: str, bundle: dict[str, Any] | None) -> list[dict[str, str]]:
    found = matches(bundle)
    if kind == "practitioners":
        roles = _roles(bundle)
        rows = []
        for res in found:
            if res.get("resourceType") == "Practitioner":
                row = practitioner_fields(res)
                row.update(roles.get(row["id"], {"role": "", "department": ""}))
                row["organization"] = row["organization"] or row.pop("role_organization", "")
                rows.append(row)
        return rows
    return [org_fields(r) for r in found if r.get("resourceType") == "Organization"]


def _roles(bundle: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """The PractitionerRoles a search included, by Practitioner id: role, department, institution."""
    out: dict[str, dict[str, str]] = {}
    for entry in (bundle or {}).get("entry", []):
        res = entry.get("resource") or {}
        if res.get("resourceType") != "PractitionerRole" or not res.get("active", True):
            continue
        who = str((res.get("practitioner") or {}).get("reference", "")).removeprefix("Practitioner/")
        codes = [c for concept in res.get("code") or [] for c in concept.get("coding") or []]
        out.setdefault(
            who,
            {
                "role": str(codes[0].get("display") or codes[0].get("code", "")) if codes else "",
                "department": ", ".join(str(s.get("text", "")) for s in res.get("specialty") or []),
                "role_organization": str((res.get("organization") or {}).get("reference", "")).removeprefix(
                    "Organization/"
                ),
            },
        )
    return out


def routes(portal: Portal) -> list[Route]:
    """机构与人员 routes."""

    async def listing(
        viewer: Viewer,
        request: Request,
        *,
        status: int = 200,
        report: list[RowResult] | None = None,
        problem: FileProblem | None = None,
        import_kind: str = "organizations",
    ) -> Response:
        kind = _kind(request.query_params.get("list"))
        q = request.query_params.get("q", "").strip()[:100]
        page = request.query_params.get("page") or None
        rtype = "Practitioner" if kind == "practitioners" else "Organization"
        bundle = await portal.run(viewer, lambda: portal.fhir("GET", rtype, _query(kind, q, PAGE_SIZE, page)))
        token = next_page(bundle)
        next_link = None
        if token:
            next_link = f"{PREFIX}{HERE}?" + urlencode({"list": kind, "q": q, "page": token})
        return portal.page(
            viewer,
            "admin_dir/institutions.html",
            status=status,
            active=HERE,
            here=request.url.path,
            kind=kind,
            q=q,
            rows=_rows(kind, bundle),
            first_page=page is None,
            next_link=next_link,
            kinds=KINDS,
            report=report,
            problem=problem,
            import_kind=import_kind,
            org_columns=ORGANIZATION_COLUMNS,
            practitioner_columns=PRACTITIONER_COLUMNS,
            location_columns=columns_of("Location")[0],
            service_columns=columns_of("HealthcareService")[0],
            max_kb=MAX_BYTES // 1024,
        )

    async def institutions(request: Request) -> Response:
        """The list of institutions or practitioners, searched by name or identifier, a page at a time."""
        viewer = await admin(portal, request)
        return await listing(viewer, request)

    async def export(request: Request) -> Response:
        """The list (every page, up to a limit) as CSV with the import's columns."""
        viewer = await admin(portal, request)
        kind = _kind(request.query_params.get("list"))
        q = request.query_params.get("q", "").strip()[:100]
        rtype = _type(kind)

        def collect() -> list[dict[str, str]]:
            rows: list[dict[str, str]] = []
            orgs: list[dict[str, Any]] = []
            page: str | None = None
            while len(rows) + len(orgs) < EXPORT_LIMIT:
                bundle = portal.fhir("GET", rtype, _query(kind, q, 500, page))
                if kind == "practitioners":
                    rows += _rows(kind, bundle)
                else:
                    orgs += [r for r in matches(bundle) if r.get("resourceType") == "Organization"]
                page = next_page(bundle)
                if not page:
                    break
            if orgs:  # their parents by institution code, as the import takes them
                rows = rows_of(_refusing(portal), rtype, orgs[:EXPORT_LIMIT])
            return rows[:EXPORT_LIMIT]

        rows = await portal.run(viewer, collect)
        columns = columns_of(rtype)[0]
        return Response(
            export_csv(rows, columns),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{kind}.csv"',
                "Cache-Control": "no-store",
            },
        )

    async def import_csv(request: Request) -> Response:
        """Create or update a resource per CSV row; the page shows each row's result."""
        viewer = await admin(portal, request)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BYTES + FORM_PART:
            problem = FileProblem("dir.csv.too_big", limit=MAX_BYTES // 1024)
            return await listing(viewer, request, status=413, problem=problem)
        try:
            form = await request.form(max_files=1, max_fields=5, max_part_size=FORM_PART)
        except Exception:  # a malformed or oversized multipart body
            return await listing(viewer, request, status=400, problem=FileProblem("dir.csv.unreadable"))
        await portal.check_csrf(request, viewer, {"csrf": str(form.get("csrf", ""))})
        kind = _import_kind(str(form.get("kind", "")))
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await listing(
                viewer, request, status=400, problem=FileProblem("dir.csv.no_file"), import_kind=kind
            )
        data = await upload.read(MAX_BYTES + 1)
        try:
            rows = read_rows(data, _type(kind))
        except FileProblem as problem:
            return await listing(viewer, request, status=400, problem=problem, import_kind=kind)
        report = await portal.run(viewer, lambda: import_rows(_refusing(portal), _type(kind), rows))
        return await listing(viewer, request, report=report, import_kind=kind)

    def _edit_page(
        viewer: Viewer, request: Request, org_id: str, fields: dict[str, str], status: int = 200, **extra: Any
    ) -> Response:
        return portal.page(
            viewer,
            "admin_dir/institution_edit.html",
            status=status,
            active=HERE,
            here=request.url.path,
            org_id=org_id,
            f=fields,
            kinds=KINDS,
            saved=request.query_params.get("saved") == "1",
            **{"error_field": "", "error_key": "", "error_detail": "", **extra},
        )

    async def edit(request: Request) -> Response:
        """The form of one institution."""
        viewer = await admin(portal, request)
        org_id = request.path_params["id"]
        org = await portal.run(viewer, lambda: portal.fhir("GET", f"Organization/{org_id}")) or {}
        fields = {**org_fields(org), "version": version_of(org)}
        return _edit_page(viewer, request, org_id, fields)

    async def save(request: Request) -> Response:
        """Save the form with a FHIR PUT; errors (the page's checks, OperationOutcomes) shown by the form."""
        viewer, posted = await admin_form(portal, request)
        org_id = request.path_params["id"]
        fields = {k: posted.get(k, "") for k in ORGANIZATION_COLUMNS}
        version = posted.get("version", "")
        try:
            clean = check_org(fields)
        except RowError as error:
            return _edit_page(
                viewer,
                request,
                org_id,
                {**fields, "version": version},
                400,
                error_field=error.field,
                error_key=error.key,
            )

        def put() -> None:
            current = portal.fhir("GET", f"Organization/{org_id}") or {}
            refuse_if_changed(current, version, "dir.inst.conflict")
            query = [("identifier", f"{INSTITUTION_CODE}|{clean['code']}"), ("_count", "2")]
            if any(o.get("id") != org_id for o in matches(portal.fhir("GET", "Organization", query))):
                raise PortalError(409, "dir.err.code_taken", clean["code"])
            portal.fhir("PUT", f"Organization/{org_id}", body=apply_org(current, clean, org_id))

        try:
            await portal.run(viewer, put)
        except PortalError as error:
            shown = shown_again(error, "dir.inst.conflict", fields, version)
            return _edit_page(
                viewer, request, org_id, shown, error.status, error_key=error.key, error_detail=error.detail
            )
        return RedirectResponse(f"{PREFIX}{HERE}/{org_id}?saved=1", status_code=303)

    async def new_form(request: Request) -> Response:
        """An empty form for an institution not yet in the directory."""
        viewer = await admin(portal, request)
        return _edit_page(viewer, request, NEW, dict.fromkeys(ORGANIZATION_COLUMNS, "") | {"active": "true"})

    async def create(request: Request) -> Response:
        """Add an institution (its id ``org-<code>``, as the region's are) with a FHIR PUT."""
        viewer, posted = await admin_form(portal, request)
        fields = {k: posted.get(k, "") for k in ORGANIZATION_COLUMNS}
        try:
            clean = check_org(fields)
        except RowError as error:
            return _edit_page(viewer, request, NEW, fields, 400, error_field=error.field, error_key=error.key)
        new_id = f"org-{clean['code']}"

        def put() -> None:
            query = [("identifier", f"{INSTITUTION_CODE}|{clean['code']}"), ("_count", "1")]
            taken = matches(portal.fhir("GET", "Organization", query))
            if taken or portal.fhir("GET", f"Organization/{new_id}", missing_ok=True) is not None:
                raise PortalError(409, "dir.err.code_taken", clean["code"])
            portal.fhir("PUT", f"Organization/{new_id}", body=apply_org(None, clean, new_id))

        try:
            await portal.run(viewer, put)
        except PortalError as error:
            if error.status in (401, 403):
                raise
            return _edit_page(
                viewer, request, NEW, fields, error.status, error_key=error.key, error_detail=error.detail
            )
        return RedirectResponse(f"{PREFIX}{HERE}/{new_id}?saved=1", status_code=303)

    return [
        Route(f"{PREFIX}{HERE}", guarded(portal, institutions), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/{NEW}", guarded(portal, new_form), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/{NEW}", guarded(portal, create), methods=["POST"]),
        Route(f"{PREFIX}{HERE}/export.csv", guarded(portal, export), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/import", guarded(portal, import_csv), methods=["POST"]),
        Route(f"{PREFIX}{HERE}/{{id}}", guarded(portal, edit), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/{{id}}", guarded(portal, save), methods=["POST"]),
    ]
