"""Break-the-glass (紧急调阅) in the portal: the reason a clinician states for opening a record without a care
relationship is kept for 30 minutes in an HttpOnly, SameSite=Strict cookie of that patient, sealed with an
HMAC over the account, the patient and the expiry (a cookie copied to another account or patient, or kept
past its time, is ignored). The security layer decides (clinicians only), audits with purpose ETREAT and
raises the alert; the portal only carries the reason into ``acting_as`` through ``Viewer.glass``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

from starlette.requests import Request

from rhip.security.principal import Role
from rhip.web.portal.core import Viewer

GLASS_SECONDS = 30 * 60
MIN_REASON, MAX_REASON = 4, 500
COOKIE_PREFIX = "rhip_glass_"
_SAFE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# The seal's key lives as long as the process: after a restart the clinician states the reason again.
_KEY = secrets.token_bytes(32)


def cookie_name(patient_id: str) -> str:
    """The cookie holding the glass reason of one patient."""
    return COOKIE_PREFIX + patient_id


def _seal(username: str, patient_id: str, expires: int, reason: str) -> str:
    message = "\x1f".join((username, patient_id, str(expires), reason)).encode()
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()[:32]


def clean_reason(text: str) -> str | None:
    """The stated reason, trimmed; None when too short (fewer than 4 characters) or too long."""
    reason = " ".join(str(text).split())
    if len(reason) < MIN_REASON or len(reason) > MAX_REASON:
        return None
    return reason


def glass_cookie(
    viewer: Viewer, patient_id: str, reason: str, now: float | None = None
) -> tuple[str, str, int]:
    """The cookie (name, value, max-age) that remembers ``reason`` for ``patient_id``."""
    expires = int(now if now is not None else time.time()) + GLASS_SECONDS
    text = base64.urlsafe_b64encode(reason.encode()).decode().rstrip("=")
    value = f"{expires}.{text}.{_seal(viewer.username, patient_id, expires, reason)}"
    return cookie_name(patient_id), value, GLASS_SECONDS


def glass_reason(request: Request, viewer: Viewer, patient_id: str, now: float | None = None) -> str | None:
    """The reason stated for ``patient_id`` by this clinician in the last 30 minutes, else None."""
    if viewer.role is not Role.CLINICIAN or not _SAFE_ID.match(patient_id):
        return None
    value = request.cookies.get(cookie_name(patient_id))
    if not value or value.count(".") != 2:
        return None
    expires_text, text, seal = value.split(".")
    try:
        expires = int(expires_text)
        reason = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if expires < (now if now is not None else time.time()) or expires > time.time() + GLASS_SECONDS + 60:
        return None
    if not hmac.compare_digest(seal, _seal(viewer.username, patient_id, expires, reason)):
        return None
    return clean_reason(reason)
