"""Portal pages of the resident area (公众门户): my record and documents, who viewed my record, consent.

A resident's account is bound to Patient ids (their own and their children's, as proxy); with several,
the pages ask whose record (``?patient=``). Every read goes through the FHIR door as the resident, so the
policy limits it to those records and the audit log records it; the record assembly is shared with the
clinician workbench (:mod:`rhip.web.portal.record`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.security.principal import Role
from rhip.web.portal import record
from rhip.web.portal import resident_consent as consent
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX
from rhip.web.portal.record_charts import bp_figure
from rhip.web.portal.resident_viewers import who_viewed

FORM_LIMIT = 64 * 1024


def bound_patients(viewer: Viewer) -> tuple[str, ...]:
    """The Patient ids the resident's account is bound to (own first, then children)."""
    return tuple(dict.fromkeys(p for p in viewer.principal.patients if p))


def chosen_patient(viewer: Viewer, asked: str | None) -> str:
    """The record the resident asked for (one of theirs), else their own; 403 when the account has none."""
    mine = bound_patients(viewer)
    if not mine:
        raise PortalError(403, "me.no_record")
    if asked and asked not in mine:
        raise PortalError(403, "error.forbidden")
    return asked or mine[0]


def choices(portal: Portal, viewer: Viewer) -> list[dict[str, str]]:
    """The records the account may pick from, with names (empty when there is only one)."""
    mine = bound_patients(viewer)
    if len(mine) < 2:
        return []
    found = portal.search("Patient", _id=",".join(mine), _elements="name", _count=len(mine))
    names = {str(p.get("id")): record.name_of(p) for p in found}
    return [{"id": p, "name": names.get(p) or p} for p in mine]


def bp_chart(portal: Portal, vitals: dict[str, Any], lang: str) -> dict[str, Any] | None:
    """The blood-pressure trend figure, when there are two readings or more."""
    points = vitals.get("pressure") or []
    if len(points) < 2:
        return None

    def words(key: str) -> str:
        return portal.messages.text(key, lang)

    return bp_figure(
        points, title=words("me.bp_chart"), systolic=words("me.systolic"), diastolic=words("me.diastolic")
    )


def routes(portal: Portal) -> list[Route]:
    """The area's routes."""

    async def resident(request: Request) -> tuple[Viewer, str]:
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.RESIDENT)
        if viewer.role is not Role.RESIDENT:  # the platform's own processes have no record of their own
            raise PortalError(403, "error.forbidden")
        return viewer, chosen_patient(viewer, request.query_params.get("patient"))

    async def my_record(request: Request) -> Response:
        """The resident's own record: summary, encounters and documents."""
        viewer, patient = await resident(request)

        def load() -> dict[str, Any]:
            who = record.person(portal, patient)
            vitals = record.vitals(portal, who)
            return {
                "who": who,
                "summary": record.summary(portal, who),
                "vitals": vitals,
                "bp": bp_chart(portal, vitals, viewer.lang),
                "labs": record.labs(portal, who),
                "timeline": record.timeline(portal, who, count=50),
                "documents": record.documents(portal, who),
                "choices": choices(portal, viewer),
            }

        data = await portal.run(viewer, load)
        return portal.page(
            viewer, "resident/record.html", active="/me", here=_here(request), patient=patient, **data
        )

    async def my_document(request: Request) -> Response:
        """One of the resident's documents, rendered as HTML (403 for anyone else's)."""
        viewer, patient = await resident(request)
        docref = str(request.path_params["docref"])

        def load() -> dict[str, Any]:
            who = record.person(portal, patient)
            doc = record.document(portal, who, docref)
            html = record.document_html(doc["data"], lang=viewer.lang, mask_ids=not viewer.sees_whole_ids())
            return {"who": who, "doc": doc, "html": html}

        data = await portal.run(viewer, load)
        return portal.page(
            viewer, "resident/document.html", active="/me", here=_here(request), patient=patient, **data
        )

    async def viewers(request: Request) -> Response:
        """Who has viewed my record: from the audit log, without addresses, the resident's own reads left out."""
        viewer, patient = await resident(request)

        def load() -> dict[str, Any]:
            who = record.person(portal, patient)
            return {
                "who": who,
                "rows": who_viewed(portal, who.records, viewer.principal.subject),
                "choices": choices(portal, viewer),
            }

        data = await portal.run(viewer, load)
        return portal.page(
            viewer,
            "resident/viewers.html",
            active="/me/viewers",
            here=_here(request),
            patient=patient,
            **data,
        )

    async def consent_page(request: Request) -> Response:
        """The consent settings (GET), or saving them (POST, CSRF-checked) and showing them read back."""
        viewer, patient = await resident(request)
        saved = request.query_params.get("saved") == "1"
        if request.method == "POST":
            form = await request.form(max_part_size=FORM_LIMIT)
            await portal.check_csrf(request, viewer, form)
            categories = consent.chosen(form, "deny_category")
            asked = consent.chosen(form, "deny_institution")

            def store() -> None:
                who = record.person(portal, patient)
                before = consent.current(portal, patient)
                listed = {o["id"] for o in consent.institutions(portal, who.records, before.institutions)}
                consent.save(portal, patient, categories, [o for o in asked if o in listed])

            await portal.run(viewer, store)
            query = urlencode({"saved": "1", "patient": patient})
            return RedirectResponse(f"{PREFIX}/me/consent?{query}", status_code=303)

        def load() -> dict[str, Any]:
            who = record.person(portal, patient)
            settings = consent.current(portal, patient)
            return {
                "who": who,
                "settings": settings,
                "institutions": consent.institutions(portal, who.records, settings.institutions),
                "categories": consent.categories(),
                "choices": choices(portal, viewer),
            }

        data = await portal.run(viewer, load)
        return portal.page(
            viewer,
            "resident/consent.html",
            active="/me/consent",
            here=_here(request),
            patient=patient,
            saved=saved,
            **data,
        )

    return [
        Route(PREFIX + "/me", guarded(portal, my_record)),
        Route(PREFIX + "/me/document/{docref}", guarded(portal, my_document)),
        Route(PREFIX + "/me/viewers", guarded(portal, viewers)),
        Route(PREFIX + "/me/consent", guarded(portal, consent_page), methods=["GET", "POST"]),
    ]


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")
