"""Someone else's public keys: a JWKS given inline, at an https URL or in a file, fetched and cached.

Used for registered clients' keys (private_key_jwt) and for an external OpenID provider. A fetched set is
kept ``ttl`` seconds; a kid it lacks makes it fetch again (at most every ``refetch_interval`` seconds), so
a client that rotates its key is seen at once; when a fetch fails the keys fetched before keep working.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from jwt import PyJWK, PyJWKError

log = logging.getLogger("rhip.security.identity")
MAX_BYTES = 256 * 1024
# Which key types each accepted algorithm needs (a key is never used with another family's algorithm).
_FAMILY = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
}


def check_location(location: str) -> None:
    """Raise ValueError unless ``location`` is an https URL or an existing file."""
    if location.startswith("https://"):
        return
    if location.startswith(("http://", "ftp://", "data:")):
        raise ValueError("a JWKS URL must use https")
    path = Path(location.removeprefix("file://"))
    if not path.is_file():
        raise ValueError("a JWKS location is an https URL or an existing file")


def parse_jwks(data: bytes | str | dict[str, Any]) -> list[dict[str, Any]]:
    """The keys of a JWK Set; raises ValueError for anything else, or for a set holding a private key."""
    doc = orjson.loads(data) if isinstance(data, bytes | str) else data
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise ValueError("a JWKS is a JSON object with a list of keys")
    for key in keys:
        if any(member in key for member in ("d", "p", "q", "k")):
            raise ValueError("the JWKS holds a private or symmetric key: register only public keys")
    return keys


class _HttpsRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to https URLs only (a JWKS is never fetched in the clear)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        """The redirected request, or an error for a redirect away from https."""
        if not newurl.startswith("https://"):
            raise urllib.error.URLError("a JWKS redirect leaves https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpsRedirects)


def _fetch(location: str, timeout: float) -> bytes:
    if location.startswith("https://"):
        request = urllib.request.Request(location, headers={"Accept": "application/json"})  # noqa: S310
        with _OPENER.open(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_BYTES + 1)
    else:
        check_location(location)
        with open(location.removeprefix("file://"), "rb") as handle:
            body = handle.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise ValueError("the JWKS is too large")
    return body


def select_key(keys: list[dict[str, Any]], kid: str | None, alg: str) -> Any | None:
    """The public key object for ``kid`` usable with ``alg`` (without a kid: the only candidate), or None."""
    family = _FAMILY.get(alg)
    if family is None:
        return None
    candidates = []
    for jwk in keys:
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg or jwk.get("kty") != family[0]:
            continue
        if family[1] is not None and jwk.get("crv") != family[1]:
            continue
        if kid is not None and jwk.get("kid") != kid:
            continue
        candidates.append(jwk)
    if len(candidates) != 1:
        return None
    try:
        return PyJWK(candidates[0], algorithm=alg).key
    except (PyJWKError, ValueError, TypeError):
        return None


class JwksSource:
    """One party's public keys, inline or fetched from ``location``."""

    def __init__(
        self,
        *,
        inline: str | dict[str, Any] | None = None,
        location: str | None = None,
        ttl: float = 300.0,
        refetch_interval: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        if (inline is None) == (location is None):
            raise ValueError("a JWKS source is inline or at a location, one of the two")
        self.location = location
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self._keys: list[dict[str, Any]] = parse_jwks(inline) if inline is not None else []
        self._fetched_at = float("-inf")
        self._tried_at = float("-inf")
        self._lock = threading.Lock()

    def _refresh(self, *, missing: bool) -> None:
        if self.location is None:
            return
        if not missing and time.monotonic() - self._fetched_at <= self.ttl:
            return
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > self.ttl
            # Neither a stale set nor an unknown kid fetches more often than every refetch_interval.
            if not (stale or missing) or now - self._tried_at <= self.refetch_interval:
                return
            self._tried_at = now
            try:
                self._keys = parse_jwks(_fetch(self.location, self.timeout))
                self._fetched_at = now
            except Exception as exc:  # network, file or format: keep the keys fetched before
                log.warning("could not fetch a JWKS (%s); using the keys fetched before", type(exc).__name__)

    def key(self, kid: str | None, alg: str) -> Any | None:
        """The public key for ``kid`` and ``alg`` (fetching the set when stale or the kid is new), or None."""
        self._refresh(missing=False)
        found = select_key(self._keys, kid, alg)
        if found is None and self.location is not None:
            self._refresh(missing=True)
            found = select_key(self._keys, kid, alg)
        return found
