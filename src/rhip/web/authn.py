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

    def peek(self, bearer_token: str) -> Principal | None:
        """The principal of a token verified before, from memory only (no I/O), else None."""

    def refuse_anonymous(self, address: str | None, reason: str) -> None:
        """Audit a request refused for want of credentials."""


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
            if self.authority is not None:
                self.authority().refuse_anonymous(address, "no bearer token")
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
    """The rate-limit key of a request: the subject of its token when that token was verified before
    (None, so its address is used, when it carries none, or one never verified: a forged token must not
    drain another's bucket, nor random tokens get fresh ones).

    It runs on the event loop for every request, so it only looks into the verified-token cache
    (``peek``): no database, no signature check, no JWKS fetch. A token's first request counts against
    its address; later ones against its subject.
    """

    def key(scope: Mapping[str, Any]) -> str | None:
        if not authenticator.enabled or authenticator.authority is None:
            return None
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    return None
                try:
                    known = authenticator.authority().peek(token.strip())
                except Exception:  # any failure (the platform not built yet): key by address
                    return None
                return known.subject if known is not None else None
        return None

    return key
