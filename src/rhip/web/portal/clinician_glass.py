"""Break-the-glass (紧急调阅) in the portal: the reason a clinician states for opening a record without a care
relationship is kept for 30 minutes in an HttpOnly, SameSite=Strict cookie of that patient, sealed with an
HMAC over the account, the portal session, the patient and the expiry (a cookie copied to another account,
session or patient, or kept past its time, is ignored). The security layer decides (clinicians only),
audits with purpose ETREAT and raises the alert; the portal only carries the reason into ``acting_as``
through ``Viewer.glass``.

The seal's key is ``portal-seal.key`` in the security keys directory (32 random bytes, made once, 0600), so
every server worker and a restarted server read each other's cookies. Every glass cookie's name starts with
:data:`COOKIE_PREFIX` (signing out deletes them all); a browser keeps at most :data:`MAX_GLASS` of them, the
most recent.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request

from rhip.security.principal import Role
from rhip.web.portal.core import Viewer

if TYPE_CHECKING:
    from rhip.web.portal.core import Portal

GLASS_SECONDS = 30 * 60
MIN_REASON, MAX_REASON = 4, 500
COOKIE_PREFIX = "rhip_glass_"
MAX_GLASS = 20  # glass cookies a browser keeps (the most recent)
KEY_FILE = "portal-seal.key"
KEY_BYTES = 32
_SAFE_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_keys: dict[Path, bytes] = {}
_keys_lock = threading.Lock()


def cookie_name(patient_id: str) -> str:
    """The cookie holding the glass reason of one patient (``patient_id`` a FHIR id)."""
    if not _SAFE_ID.match(patient_id):
        raise ValueError("not a FHIR id")
    return COOKIE_PREFIX + patient_id


def load_key(keys_dir: str | os.PathLike[str]) -> bytes:
    """The seal's key in ``keys_dir`` (made when missing: 32 random bytes, mode 0600, written whole before
    it appears under its name, never replacing a key another worker made first); read once per process."""
    path = (Path(keys_dir) / KEY_FILE).resolve()
    with _keys_lock:
        known = _keys.get(path)
        if known is not None:
            return known
        if not path.exists():
            _make_key(path)
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise RuntimeError(f"{path} is not a {KEY_BYTES}-byte key: remove it to make a new one")
        _keys[path] = key
        return key


def _make_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another worker's key is there already: it stays
            os.link(temp, path)  # atomic: the whole key appears under its name, or nothing
    finally:
        temp.unlink(missing_ok=True)


def seal_key(portal: Portal) -> bytes:
    """The portal's seal key (from its settings' security keys directory)."""
    return load_key(portal.settings.security.keys_dir)


def _seal(key: bytes, viewer: Viewer, patient_id: str, expires: int, reason: str) -> str:
    session = viewer.principal.session or ""
    message = "\x1f".join((viewer.username, session, patient_id, str(expires), reason)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def clean_reason(text: str) -> str | None:
    """The stated reason, trimmed; None when too short (fewer than 4 characters) or too long."""
    reason = " ".join(str(text).split())
    if len(reason) < MIN_REASON or len(reason) > MAX_REASON:
        return None
    return reason


def glass_cookie(
    viewer: Viewer, patient_id: str, reason: str, *, key: bytes, now: float | None = None
) -> tuple[str, str, int]:
    """The cookie (name, value, max-age) that remembers ``reason`` for ``patient_id``."""
    expires = int(now if now is not None else time.time()) + GLASS_SECONDS
    text = base64.urlsafe_b64encode(reason.encode()).decode().rstrip("=")
    value = f"{expires}.{text}.{_seal(key, viewer, patient_id, expires, reason)}"
    return cookie_name(patient_id), value, GLASS_SECONDS


def _expiry(value: str) -> int:
    try:
        return int(value.partition(".")[0])
    except ValueError:
        return 0


def _recent(request: Request) -> list[str]:
    """The names of the request's glass cookies, the most recent (latest expiry) first."""
    found = [(name, v) for name, v in request.cookies.items() if name.startswith(COOKIE_PREFIX)]
    return [name for name, _ in sorted(found, key=lambda nv: _expiry(nv[1]), reverse=True)]


def stale_glass(request: Request, keep: str) -> list[tuple[str, str, int]]:
    """Cookies that expire the oldest glass cookies, so that with a new one for ``keep`` (a patient id) the
    browser holds at most :data:`MAX_GLASS`."""
    others = [name for name in _recent(request) if name != COOKIE_PREFIX + keep]
    return [(name, "", 0) for name in others[MAX_GLASS - 1 :]]


def glass_reason(
    request: Request, viewer: Viewer, patient_id: str, *, key: bytes, now: float | None = None
) -> str | None:
    """The reason stated for ``patient_id`` by this clinician in this session in the last 30 minutes, else
    None (also when the cookie is not among the :data:`MAX_GLASS` most recent)."""
    if viewer.role is not Role.CLINICIAN or not _SAFE_ID.match(patient_id):
        return None
    name = cookie_name(patient_id)
    value = request.cookies.get(name)
    if not value or value.count(".") != 2 or name not in _recent(request)[:MAX_GLASS]:
        return None
    expires_text, text, seal = value.split(".")
    try:
        expires = int(expires_text)
        reason = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if expires < (now if now is not None else time.time()) or expires > time.time() + GLASS_SECONDS + 60:
        return None
    if not hmac.compare_digest(seal, _seal(key, viewer, patient_id, expires, reason)):
        return None
    return clean_reason(reason)
