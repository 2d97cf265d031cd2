"""The exchange error list (交换错误): refused HL7 v2/v3 messages and CDA documents, replay and dismiss.

The rejects store is the exchange's own (no FHIR resource), read after :meth:`Portal.require` has
checked the viewer is an administrator. A reject's content is shown masked only, and opening it is
audited. A replay runs the kept bytes through their door as the administrator (``acting_as``), so what it
stores passes the security layer and is audited as that person's write; a dismissal is audited too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.bootstrap.replay import ReplayNotAllowed, dismiss_reject, rejects_of, replay_reject, replayable
from rhip.core.errors import RhipError
from rhip.exchange.rejects import CHANNELS, Rejected
from rhip.security.masking import mask_text
from rhip.security.principal import Role
from rhip.web.portal.admin_ops_mask import masked_content, masked_reason
from rhip.web.portal.admin_ops_params import path_id
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX

PAGE = "/admin/exchange"
ZONE = ZoneInfo("Asia/Shanghai")
LIST_LIMIT = 200
SCAN_LIMIT = 2000  # rows read to filter by sender
MAX_NOTE = 500


def when(us: int | None) -> str:
    """A time in microseconds since the epoch, in Beijing time."""
    if not us:
        return ""
    return datetime.fromtimestamp(us / 1_000_000, ZONE).strftime("%Y-%m-%d %H:%M:%S")


def routes(portal: Portal) -> list[Route]:
    """The exchange error pages' routes."""

    async def listing(request: Request) -> Response:
        """Refused input, newest first, filtered by channel, sender and open/all."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        q = request.query_params
        channel = q.get("channel") or None
        if channel not in CHANNELS:
            channel = None
        sender = (q.get("sender") or "").strip()[:128]
        show_all = q.get("status") == "all"

        def read() -> list[Rejected]:
            store = rejects_of(portal.current())
            rows = store.list(
                status=None if show_all else "open",
                channel=channel,
                limit=SCAN_LIMIT if sender else LIST_LIMIT,
            )
            return [r for r in rows if not sender or r.sender == sender][:LIST_LIMIT]

        rows = await portal.run(viewer, read)
        return portal.page(
            viewer,
            "admin_ops/exchange_list.html",
            active=PAGE,
            here=request.url.path,
            rows=[_row(r) for r in rows],
            channels=sorted(CHANNELS),
            channel=channel or "",
            sender=sender,
            shown_status="all" if show_all else "open",
            done=q.get("done", ""),
        )

    async def detail(request: Request) -> Response:
        """One reject: why, when, from whom, its content masked, the answer the sender got."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        reject_id = _reject_id(request)
        reject = await portal.run(viewer, lambda: _shown(portal, viewer, reject_id))
        return portal.page(
            viewer,
            "admin_ops/exchange_detail.html",
            active=PAGE,
            here=request.url.path,
            reject=reject,
            done="",
            detail="",
        )

    async def resolve(request: Request) -> Response:
        """Replay or dismiss a reject (``action`` replay | dismiss).

        Done, it goes back to the list; refused (not replayable, or refused again by its door), the reject's
        page is shown with why, not carried in the URL (where it would end in logs and history).
        """
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        form = await request.form()
        await portal.check_csrf(request, viewer, form)
        reject_id = _reject_id(request)
        action = str(form.get("action", "replay"))
        if action not in ("replay", "dismiss"):
            raise PortalError(400, "ops.ex.bad_action")
        note = str(form.get("note", "")).strip()[:MAX_NOTE]
        who = viewer.principal.subject

        def run() -> tuple[str, str, dict[str, Any] | None]:
            platform = portal.current()
            subtype = f"exchange-reject-{action}"
            try:
                if action == "dismiss":
                    dismiss_reject(
                        platform, reject_id, f"dismissed in the portal by {who}: {note}".strip(": ")
                    )
                    _audit(portal, viewer, "U", subtype, reject_id)
                    return "dismissed", "", None
                result = replay_reject(platform, reject_id, f"replayed in the portal by {who}")
            except ReplayNotAllowed as exc:
                _audit(portal, viewer, "U" if action == "dismiss" else "E", subtype, reject_id, False)
                return "not_allowed", masked_reason(exc.reason), _shown(portal, viewer, reject_id)
            except RhipError:
                _audit(portal, viewer, "U" if action == "dismiss" else "E", subtype, reject_id, False)
                raise
            _audit(portal, viewer, "E", subtype, reject_id, result.accepted)
            if result.accepted:
                return "replayed", "", None
            return "refused", masked_reason(result.detail), _shown(portal, viewer, reject_id)

        done, why, shown = await portal.run(viewer, run)
        if shown is None:
            return RedirectResponse(f"{PREFIX}{PAGE}?" + urlencode({"done": done}), status_code=303)
        return portal.page(
            viewer,
            "admin_ops/exchange_detail.html",
            active=PAGE,
            here=f"{PREFIX}{PAGE}/{reject_id}",
            reject=shown,
            done=done,
            detail=why[:300],
        )

    return [
        Route(PREFIX + PAGE, guarded(portal, listing)),
        Route(PREFIX + PAGE + "/{id:int}", guarded(portal, detail)),
        Route(PREFIX + PAGE + "/{id:int}/resolve", guarded(portal, resolve), methods=["POST"]),
    ]


def _reject_id(request: Request) -> int:
    """The reject id of the path; a 404 page for one no row can have."""
    value = path_id(request.path_params["id"])
    if value is None:
        raise PortalError(404, "error.not_found")
    return value


def _shown(portal: Portal, viewer: Viewer, reject_id: int) -> dict[str, Any]:
    """What a reject's page shows (inside :meth:`Portal.run`); opening it is audited."""
    reject = rejects_of(portal.current()).get(reject_id)
    _audit(portal, viewer, "R", "exchange-reject-read", reject_id)
    return {
        **_row(reject),
        "content": masked_content(reject.raw, reject.channel),
        "ack": masked_content(reject.ack, reject.channel) if reject.ack else "",
        "size": len(reject.raw),
        "resolved": when(reject.resolved_us),
        "note": mask_text(reject.note),
    }


def _row(r: Rejected) -> dict[str, Any]:
    return {
        "id": r.id,
        "received": when(r.received_us),
        "channel": r.channel,
        "sender": r.sender,
        "application": r.application,
        "control_id": r.control_id,
        "reason_code": r.reason_code,
        "reason": masked_reason(r.reason),
        "status": r.status,
        "replayable": r.status == "open" and replayable(r) is None,
    }


def _audit(
    portal: Portal, viewer: Viewer, action: str, subtype: str, reject_id: int, ok: bool = True
) -> None:
    """Record an operator's reading, replay or dismissal of a reject in the audit trail."""
    security = portal.current().security
    if security is None or not security.enabled:
        return
    security.audit.accessed(
        viewer.principal,
        action=action,
        subtype=subtype,
        resources=[],
        patients=[],
        outcome="0" if ok else "4",
        query=f"exchange_reject/{reject_id}",
        detail={"reject": str(reject_id)},
    )
