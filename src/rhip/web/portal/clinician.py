"""The clinician workbench (医生工作台): find a resident, read their cross-institution record (调阅), open
their documents, and break the glass when there is no care relationship.

The record page answers with the summary; vitals, timeline, labs, documents and the institutions holding
records load as htmx fragments so the first response stays fast. The page, each section and each document
first pass the record's door (:func:`record.door`, a search the policy gates by care relationship, consent
or break-the-glass): without one, nothing of the record shows — a 403 gives clinicians the break-the-glass
form (a section, the refusal in place). Patient and document ids in paths are FHIR ids (404 otherwise).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.core.ids import is_valid_fhir_id
from rhip.security.principal import Role
from rhip.web.portal import record
from rhip.web.portal.clinician_glass import clean_reason, glass_cookie, glass_reason, seal_key, stale_glass
from rhip.web.portal.clinician_search import MAX_QUERY, MIN_QUERY, find_residents
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX
from rhip.web.portal.record_charts import bp_figure, lab_figure

AREA = "/clinician"
ROLES = (Role.CLINICIAN, Role.PUBLIC_HEALTH)  # and the platform's processes (Portal.require)
SECTIONS = ("vitals", "timeline", "labs", "documents", "holders")
FORM_LIMIT = 16 * 1024


def routes(portal: Portal) -> list[Route]:
    """The area's routes."""
    base = PREFIX + AREA

    def words(viewer: Viewer, key: str) -> str:
        return portal.messages.text(key, viewer.lang)

    async def viewer_of(request: Request) -> Viewer:
        viewer = await portal.signed_in(request)
        portal.require(viewer, *ROLES)
        return viewer

    def path_id(request: Request, name: str) -> str:
        """A FHIR id from the path (a patient's, a document's); 404 for anything else."""
        value = str(request.path_params[name])
        if not is_valid_fhir_id(value):
            raise PortalError(404, "error.not_found")
        return value

    async def patient_viewer(request: Request) -> tuple[Viewer, str]:
        """The viewer and the patient id of the path, the glass reason stated for that patient applied."""
        viewer = await viewer_of(request)
        pid = path_id(request, "pid")
        viewer.glass = glass_reason(request, viewer, pid, key=seal_key(portal))
        return viewer, pid

    async def search_page(request: Request) -> Response:
        """The search box and the residents it finds."""
        viewer = await viewer_of(request)
        query = request.query_params.get("q", "").strip()[:MAX_QUERY]
        kind, rows = "", list[dict[str, Any]]()
        # One character (a surname) would list half the region: at least two are asked for.
        short = bool(query) and len("".join(query.split())) < MIN_QUERY
        if query and not short:
            kind, rows = await portal.run(viewer, lambda: find_residents(portal, query))
        # ID numbers and phones in the list are always masked: whole numbers only on a record page the
        # viewer may open.
        return portal.page(
            viewer, "clinician/search.html", active=AREA, here=request.url.path, query=query, kind=kind,
            rows=rows, short=short,
        )  # fmt: skip

    async def record_page(request: Request) -> Response:
        """The resident's record: header, summary, and the sections as fragments."""
        viewer, pid = await patient_viewer(request)

        def load() -> tuple[record.Person, dict[str, Any]]:
            who = record.person(portal, pid)
            record.door(portal, who)
            return who, record.summary(portal, who)

        try:
            who, summary = await portal.run(viewer, load)
        except PortalError as exc:
            if exc.status == 403 and viewer.role is Role.CLINICIAN and not viewer.glass:
                return glass_form(request, viewer, pid, error="")
            raise
        return portal.page(
            viewer, "clinician/record.html", active=AREA, here=request.url.path, charts=True, who=who, summary=summary,
            sections=SECTIONS, base=f"{base}/patient/{pid}", unmasked=viewer.sees_whole_ids(),
        )  # fmt: skip

    def glass_form(request: Request, viewer: Viewer, pid: str, error: str, status: int = 403) -> Response:
        return portal.page(
            viewer, "clinician/glass.html", status, active=AREA, here=request.url.path, pid=pid,
            action=f"{base}/patient/{pid}/glass", error=error,
        )  # fmt: skip

    async def glass(request: Request) -> Response:
        """The stated reason for breaking the glass: remembered 30 minutes for this patient."""
        viewer = await viewer_of(request)
        pid = path_id(request, "pid")
        form = await request.form(max_fields=5, max_part_size=FORM_LIMIT)
        await portal.check_csrf(request, viewer, form)
        if viewer.role is not Role.CLINICIAN:
            raise PortalError(403, "error.forbidden", words(viewer, "clin.glass.clinicians_only"))
        reason = clean_reason(str(form.get("reason", "")))
        if reason is None:
            return glass_form(request, viewer, pid, error="clin.glass.too_short", status=400)
        response = RedirectResponse(f"{base}/patient/{pid}", status_code=303)
        sealed = glass_cookie(viewer, pid, reason, key=seal_key(portal))
        portal.apply_cookies(response, [*viewer.set_cookies, *stale_glass(request, keep=pid), sealed])
        return response

    async def section(request: Request) -> Response:
        """One section of the record (an htmx fragment)."""
        viewer, pid = await patient_viewer(request)
        name = request.path_params["name"]
        if name not in SECTIONS:
            raise PortalError(404, "error.not_found")

        def load() -> dict[str, Any]:
            who = record.person(portal, pid)
            record.door(portal, who)  # nothing of the record without a relationship, consent or glass
            if name == "vitals":
                found = record.vitals(portal, who)
                figure = bp_figure(
                    found["pressure"], title=words(viewer, "clin.vitals.bp_trend"),
                    systolic=words(viewer, "clin.vitals.systolic"), diastolic=words(viewer, "clin.vitals.diastolic"),
                )  # fmt: skip
                return {"vitals": found, "figure": figure}
            if name == "timeline":
                return {"encounters": record.timeline(portal, who)}
            if name == "labs":
                tests = record.labs(portal, who)
                for test in tests:
                    test["figure"] = lab_figure(test, title=str(test["name"]))
                return {"tests": tests}
            if name == "documents":
                return {"documents": record.documents(portal, who)}
            return {"holders": record.holders(portal, who)}

        try:
            context = await portal.run(viewer, load)
        except PortalError as exc:
            if exc.status == 401 or not request.headers.get("hx-request"):
                raise
            # htmx swaps only successful answers: the refusal is shown in the section, not left loading
            return portal.page(viewer, "clinician/fragments/refused.html", name=name, error=exc)
        return portal.page(
            viewer, f"clinician/fragments/{name}.html", base=f"{base}/patient/{pid}",
            unmasked=viewer.sees_whole_ids(), **context,
        )  # fmt: skip

    async def document_page(request: Request) -> Response:
        """One of the resident's documents, its CDA rendered as HTML."""
        viewer, pid = await patient_viewer(request)
        doc = path_id(request, "doc")

        def load() -> tuple[record.Person, dict[str, Any]]:
            who = record.person(portal, pid)
            record.door(portal, who)
            return who, record.document(portal, who, doc)

        try:
            who, found = await portal.run(viewer, load)
        except PortalError as exc:
            if exc.status == 403 and viewer.role is Role.CLINICIAN and not viewer.glass:
                return glass_form(request, viewer, pid, error="")
            raise
        html = record.document_html(found.pop("data"), lang=viewer.lang, mask_ids=not viewer.sees_whole_ids())
        return portal.page(
            viewer, "clinician/document.html", active=AREA, here=request.url.path, who=who, document=found,
            html=html, base=f"{base}/patient/{pid}",
        )  # fmt: skip

    return [
        Route(base, guarded(portal, search_page), methods=["GET"]),
        Route(base + "/patient/{pid}", guarded(portal, record_page), methods=["GET"]),
        Route(base + "/patient/{pid}/glass", guarded(portal, glass), methods=["POST"]),
        Route(base + "/patient/{pid}/section/{name}", guarded(portal, section), methods=["GET"]),
        Route(base + "/patient/{pid}/document/{doc}", guarded(portal, document_page), methods=["GET"]),
    ]
