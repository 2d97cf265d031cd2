"""What the operators' directory pages share: the administrator check, form limits, paging links, the
stale-form check of the edit pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

from starlette.requests import Request

from rhip.security.principal import Role
from rhip.web.portal.core import Portal, PortalError, Viewer

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORM_FIELDS = 40
FORM_PART = 64 * 1024


async def admin(portal: Portal, request: Request) -> Viewer:
    """The signed-in administrator (401 or 403 otherwise)."""
    viewer = await portal.signed_in(request)
    portal.require(viewer, Role.ADMIN)
    return viewer


async def admin_form(portal: Portal, request: Request) -> tuple[Viewer, dict[str, str]]:
    """The administrator and the fields of a posted form, its CSRF token checked."""
    viewer = await admin(portal, request)
    form = await request.form(max_fields=FORM_FIELDS, max_part_size=FORM_PART)
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    await portal.check_csrf(request, viewer, fields)
    return viewer, fields


def next_page(bundle: dict[str, Any] | None) -> str | None:
    """The ``_page`` token of a searchset Bundle's next link, or None on the last page."""
    for link in (bundle or {}).get("link", []):
        if link.get("relation") == "next":
            values = parse_qs(urlparse(str(link.get("url", ""))).query).get("_page")
            return values[0] if values else None
    return None


def local_time(instant: str | None) -> str:
    """A FHIR instant shown in Asia/Shanghai time (``2026-11-26 08:30:00``)."""
    if not instant:
        return ""
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return instant
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def local_us(us: int | None) -> str:
    """Epoch microseconds shown in Asia/Shanghai time."""
    if not us:
        return ""
    return datetime.fromtimestamp(us / 1_000_000, SHANGHAI).strftime("%Y-%m-%d %H:%M")


def version_of(resource: dict[str, Any]) -> str:
    """The resource's ``meta.versionId`` ('' when it has none): what an edit form carries to save against."""
    return str((resource.get("meta") or {}).get("versionId", ""))


def refuse_if_changed(current: dict[str, Any], version: str, conflict_key: str) -> None:
    """409 ``conflict_key`` when the resource was saved since the form (at ``version``) was opened."""
    if version and version_of(current) != version:
        # Someone saved it since the form was opened: do not overwrite their change unseen.
        raise PortalError(409, conflict_key)


def shown_again(
    error: PortalError, conflict_key: str, fields: dict[str, str], version: str
) -> dict[str, str]:
    """The fields an edit form shows again after ``error`` (401, 403 and 404 are raised on, not shown).

    After a conflict the form carries no version: saving it again overwrites, knowingly.
    """
    if error.status in (401, 403, 404):
        raise error
    return {**fields, "version": "" if error.key == conflict_key else version}
