"""字典对照: the institutions' local dictionaries (ConceptMaps) — list them, upload one as CSV.

An upload is read whole (at most :data:`MAX_BYTES`, UTF-8 with or without a byte-order mark) in the layout of
docs/terminology.md ("Local dictionaries"), and stored through ``Portal.fhir`` as the administrator, so the
terminology checks its targets, the security layer decides and the audit log records; loading the same file
again adds no version. An administrator bound to an institution uploads that institution's dictionaries only:
the file's ``institution`` must be its code and every local code system one of its own
(``urn:rhip:cs:local:<its code>…``), so that one hospital cannot map another's codes.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rhip.core.errors import RhipError
from rhip.terminology.conceptmaps import ConceptMap, ConceptMapError, parse_concept_map_csv
from rhip.terminology.publish import Published, publish_one
from rhip.web.portal.admin_dir_common import FORM_PART, admin, local_time
from rhip.web.portal.core import Portal, Viewer, guarded
from rhip.web.portal.nav import PREFIX

HERE = "/admin/dictionaries"
MAX_BYTES = 1024 * 1024
LISTED = 200  # dictionaries shown on the page
LOCAL_SYSTEMS = "urn:rhip:cs:local:"


def ownership_problem(concept_map: ConceptMap, institution: str | None) -> str:
    """Why an institution's administrator may not upload this map ("" when they may, or are the region's)."""
    if institution is None:
        return ""
    if concept_map.institution != institution:
        return f"institution: {concept_map.institution or '(none)'} ≠ {institution}"
    own = f"{LOCAL_SYSTEMS}{institution}"
    foreign = sorted(s for s in concept_map.source_systems() if s != own and not s.startswith(own + ":"))
    return f"source_system: {', '.join(foreign)}" if foreign else ""


def _rows(bundle: dict[str, Any] | None) -> list[dict[str, str]]:
    rows = []
    for entry in (bundle or {}).get("entry", []):
        cm = entry.get("resource") or {}
        if cm.get("resourceType") != "ConceptMap":
            continue
        groups = cm.get("group") or []
        rows.append(
            {
                "id": str(cm.get("id", "")),
                "url": str(cm.get("url", "")),
                "version": str(cm.get("version", "")),
                "title": str(cm.get("title") or cm.get("name") or ""),
                "institution": str(cm.get("publisher", "")),
                "sources": ", ".join(sorted({str(g.get("source", "")) for g in groups})),
                "targets": ", ".join(sorted({str(g.get("target", "")) for g in groups})),
                "mappings": str(
                    sum(len(e.get("target") or []) for g in groups for e in g.get("element") or [])
                ),
                "updated": local_time((cm.get("meta") or {}).get("lastUpdated")),
                "status": str(cm.get("status", "")),
            }
        )
    return rows


def routes(portal: Portal) -> list[Route]:
    """The dictionaries page and its upload."""

    async def listing(viewer: Viewer, request: Request, status: int = 200, **extra: Any) -> Response:
        query = [("_count", str(LISTED)), ("_sort", "-_lastUpdated")]
        if viewer.principal.institution is not None:
            query.append(("publisher:exact", viewer.principal.institution))
        bundle = await portal.run(viewer, lambda: portal.fhir("GET", "ConceptMap", query))
        return portal.page(
            viewer,
            "admin_dir/dictionaries.html",
            status=status,
            active=HERE,
            here=request.url.path,
            rows=_rows(bundle),
            max_kb=MAX_BYTES // 1024,
            institution=viewer.principal.institution or "",
            **{"result": None, "problem_key": "", "problem": "", **extra},
        )

    async def dictionaries(request: Request) -> Response:
        """The registered dictionaries (the viewer's institution's, or all for the region's administrator)."""
        viewer = await admin(portal, request)
        return await listing(viewer, request)

    async def upload(request: Request) -> Response:
        """Store a CSV dictionary as a ConceptMap; the page shows what became of it, or why not."""
        viewer = await admin(portal, request)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BYTES + FORM_PART:
            return await listing(viewer, request, 413, problem_key="dict.too_big")
        try:
            form = await request.form(max_files=1, max_fields=3, max_part_size=FORM_PART)
        except Exception:  # a malformed or oversized multipart body
            return await listing(viewer, request, 400, problem_key="dict.unreadable")
        await portal.check_csrf(request, viewer, {"csrf": str(form.get("csrf", ""))})
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await listing(viewer, request, 400, problem_key="dict.no_file")
        data = await upload.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            return await listing(viewer, request, 413, problem_key="dict.too_big")
        try:
            concept_map = parse_concept_map_csv(data.decode("utf-8"), "CSV")
        except UnicodeDecodeError:
            return await listing(viewer, request, 400, problem_key="dict.not_utf8")
        except ConceptMapError as exc:
            return await listing(viewer, request, 400, problem_key="dict.refused", problem=str(exc))
        not_yours = ownership_problem(concept_map, viewer.principal.institution)
        if not_yours:
            return await listing(viewer, request, 403, problem_key="dict.not_yours", problem=not_yours)

        def store() -> Published:
            return publish_one(portal.current().fhir, concept_map.to_fhir())  # as the viewer (portal.run)

        try:
            done = await portal.run(viewer, store)
        except RhipError as exc:  # the FHIR service refused the map (a target not in its table …)
            return await listing(viewer, request, 400, problem_key="dict.refused", problem=exc.message)
        mappings = sum(len(t) for t in concept_map.elements.values())
        result = {
            "action": done.action,
            "id": done.id,
            "url": done.url,
            "version": done.version,
            "mappings": mappings,
        }
        return await listing(viewer, request, result=result)

    return [
        Route(PREFIX + HERE, guarded(portal, dictionaries)),
        Route(PREFIX + HERE + "/upload", guarded(portal, upload), methods=["POST"]),
    ]
