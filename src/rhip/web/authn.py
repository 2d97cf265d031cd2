"""Who is calling over HTTP: the bearer token of a request as a principal, and the break-the-glass reason.

With security disabled (``RHIP_SECURITY__ENABLED=false``: a development setting, refused nowhere but
warned about at start) every request acts as the platform principal ``platform:unsecured``, still audited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import unquote

from starlette.requests import Request

from rhip.core.errors import InvalidRequest, Unauthenticated
from rhip.security.principal import Principal, platform_principal
from rhip.web.tls import client_certificate_sha256

GLASS_HEADER = "x-rhip-break-glass"
MIN_GLASS_REASON = 4  # characters: a reason, not a click-through


class TokenAuthority(Protocol):
    """Verifies bearer tokens (rhip.security.identity.service.IdentityService)."""

    def authenticate(self, bearer_token: str, *, address: str | None = None) -> Principal:
        """The principal of a valid token; raises Unauthenticated."""

    def principal_for_certificate(self, sha256_fingerprint_hex: str) -> Principal | None:
        """The registered client a TLS client certificate belongs to, if any."""


@dataclass(frozen=True)
class Credentials:
    """What a request presented: a bearer token, its address, the SHA-256 of its TLS client certificate."""

    token: str | None
    address: str | None
    certificate: str | None = None


class RequestAuthenticator:
    """Turns a request's credentials into a principal."""

    def __init__(self, authority: Callable[[], TokenAuthority] | None, *, enabled: bool = True) -> None:
        self.authority = authority
        self.enabled = enabled

    def credentials(self, request: Request) -> Credentials:
        """The bearer token, the caller's address and its TLS client certificate, read on the event loop."""
        address = request.client.host if request.client else None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        return Credentials(bearer, address, client_certificate_sha256(request.scope))

    def principal(self, credentials: Credentials) -> Principal:
        """The principal of a request (in a worker thread: verifying may read the database).

        A bearer token decides; without one, a TLS client certificate registered to a client
        (``rhip clients add --cert``) identifies an institution system.
        """
        token, address = credentials.token, credentials.address
        if not self.enabled:
            return platform_principal("unsecured", address=address)
        if token is None and credentials.certificate and self.authority is not None:
            by_certificate = self.authority().principal_for_certificate(credentials.certificate)
            if by_certificate is not None:
                return replace(by_certificate, address=address)
        if token is None:
            raise Unauthenticated(
                "This request needs a bearer token (Authorization: Bearer …); see /.well-known/smart-configuration"
            )
        if self.authority is None:
            raise Unauthenticated("This server issues no tokens")
        principal = self.authority().authenticate(token, address=address)
        return principal if principal.address == address else replace(principal, address=address)


def glass_reason(request: Request) -> str | None:
    """The break-the-glass reason of a request (``X-Rhip-Break-Glass``, percent-encoded UTF-8), if any."""
    raw = request.headers.get(GLASS_HEADER)
    if raw is None:
        return None
    reason = unquote(raw).strip()
    if len(reason) < MIN_GLASS_REASON:
        raise InvalidRequest(f"{GLASS_HEADER} must state a reason (at least {MIN_GLASS_REASON} characters)")
    return reason[:500]


def rate_key(authenticator: RequestAuthenticator) -> Callable[[Mapping[str, Any]], str | None]:
    """The rate-limit key of a request: the verified subject of its token (None, so its address is used,
    when it carries none or one that does not verify: a forged token must not drain another's bucket)."""

    def key(scope: Mapping[str, Any]) -> str | None:
        if not authenticator.enabled or authenticator.authority is None:
            return None
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    return None
                try:
                    return authenticator.authority().authenticate(token.strip()).subject
                except Exception:  # any failure: key by address
                    return None
        return None

    return key
