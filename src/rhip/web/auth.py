"""HTTP routes of the identity service: the OAuth 2.0 token and revocation endpoints, the JWKS and SMART
discovery.

``POST /auth/token`` and ``POST /auth/revoke`` take ``application/x-www-form-urlencoded`` bodies (RFC 6749
§4.4, RFC 7009) and answer JSON with ``Cache-Control: no-store``; every error, an outage included, is an
RFC 6749 §5.2 body (``{"error": …, "error_description": …}``), never a FHIR OperationOutcome.
``GET /.well-known/jwks.json`` publishes the signing keys, ``GET /.well-known/smart-configuration`` (also
under ``/fhir``) the endpoints and capabilities.

The work runs in worker threads under a small limiter of the routes' own (password hashing costs tens of
milliseconds and 64 MiB: sign-in storms must not take the threads the FHIR API runs on), and password and
client-assertion attempts are throttled per client address and per account name (429
``temporarily_unavailable`` with ``Retry-After``) before any of that work.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import anyio
import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rhip.core.errors import RhipError
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.service import IdentityService
from rhip.web.hardening import TokenBuckets

log = logging.getLogger("rhip.web.auth")
MAX_FORM_BYTES = 64 * 1024  # a token request is a few kilobytes (a client assertion with an RSA signature)
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
AUTH_THREADS = 2  # concurrent token requests per process; more wait (argon2id is CPU- and memory-bound)
ATTEMPTS_PER_MINUTE = 10.0  # password and client-assertion attempts per address and per account name
ATTEMPT_BURST = 10


async def read_form(request: Request) -> dict[str, str]:
    """The parameters of a form-encoded body; raises OAuthError(invalid_request)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "the request body is too large")
        chunks.append(chunk)
    try:
        pairs = parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a UTF-8 form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            # RFC 6749 §3.1: parameters must not be repeated (which one counts would be a guess).
            raise OAuthError("invalid_request", f"the {name[:40]} parameter is repeated")
        form[name] = value
    return form


def _claimed_client(form: Mapping[str, str]) -> str:
    """The client a request names (``client_id``, else its assertion's unverified ``iss``): a bucket key."""
    named = form.get("client_id")
    if named:
        return named[:128]
    try:
        issuer = jwt.decode(form.get("client_assertion", ""), options={"verify_signature": False}).get("iss")
    except (jwt.PyJWTError, AttributeError):
        return ""
    return issuer[:128] if isinstance(issuer, str) else ""


class AttemptThrottle:
    """Token buckets of credential-checking attempts: one per client address, one per account name.

    Only password grants and client assertions count (the work an attacker would repeat to guess); a
    request over either limit is refused before any of that work. Runs on the event loop (no locks needed).
    """

    def __init__(
        self,
        per_minute: float = ATTEMPTS_PER_MINUTE,
        burst: int = ATTEMPT_BURST,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        self.buckets = TokenBuckets(per_minute / 60.0, burst, **kwargs)

    def wait(self, form: Mapping[str, str], address: str | None) -> float:
        """Seconds to wait before this attempt may be made (0.0: go ahead; a token was taken)."""
        if form.get("grant_type") == "password":
            account = f"user:{form.get('username', '')[:64]}"
        elif form.get("client_assertion"):
            account = f"client:{_claimed_client(form)}"
        else:
            return 0.0
        wait = self.buckets.take(f"ip:{address or '?'}")
        if wait > 0.0:
            return wait  # the account's bucket is left alone: one address cannot drain it on its own
        return self.buckets.take(account)


def _error(exc: OAuthError, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status, headers={**NO_STORE, **(headers or {})})


def _too_many(wait: float) -> Response:
    seconds = max(1, math.ceil(wait))
    error = OAuthError("temporarily_unavailable", f"too many attempts; try again in {seconds} s", status=429)
    return _error(error, {"Retry-After": str(seconds)})


def _failed(exc: Exception) -> Response:
    """The answer to anything unexpected: 503 ``temporarily_unavailable`` (the type is logged, not the text:
    it may quote a path, a setting or a key file)."""
    if isinstance(exc, RhipError) and exc.http_status < 500:
        return _error(OAuthError("invalid_request", exc.message))
    code = f" {exc.code}" if isinstance(exc, RhipError) else ""
    log.warning("the identity service could not answer: %s%s", type(exc).__name__, code)
    return _error(OAuthError("temporarily_unavailable", "try again shortly"), {"Retry-After": "5"})


def auth_routes(
    identity: Callable[[], IdentityService],
    *,
    limiter: anyio.CapacityLimiter | None = None,
    public_base_url: str | None = None,
    throttle: AttemptThrottle | None = None,
) -> list[Route]:
    """The routes; ``identity`` gives the (lazily built) service.

    ``limiter``: the routes' own (default: ``AUTH_THREADS`` threads), never the one the FHIR API shares.
    ``public_base_url``: the URL clients reach the server at (``https://rhip.example.cn``; a ``/fhir``
    suffix is dropped), for discovery; without it, the scheme and host a request came in on when that is
    one of the server's own configured names, else the issuer's. Client assertions are checked against
    the configured token URLs only (``IdentityService.token_urls``).
    """
    root = public_base_url.rstrip("/").removesuffix("/fhir") if public_base_url else None
    own_limiter = limiter or anyio.CapacityLimiter(AUTH_THREADS)
    attempts = throttle or AttemptThrottle()

    async def run(job: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(job, limiter=own_limiter)

    def discovery_root(service: IdentityService, candidate: str) -> str:
        return root or service.known_root(candidate)

    async def token(request: Request) -> Response:
        """The token endpoint (RFC 6749): ``client_credentials`` with a ``private_key_jwt`` assertion,
        ``password`` (``username``, ``password``, and ``totp``: the current one-time code of a user with a
        second factor; without it such a sign-in is refused like a wrong password) and ``refresh_token``."""
        try:
            form = await read_form(request)
            address = request.client.host if request.client else None
            wait = attempts.wait(form, address)
            if wait > 0.0:
                return _too_many(wait)
            body = await run(lambda: identity().token(form, address=address))
        except OAuthError as exc:
            return _error(exc)
        except Exception as exc:
            return _failed(exc)
        return JSONResponse(body, headers=NO_STORE)

    async def revoke(request: Request) -> Response:
        """Token revocation (RFC 7009): 200 for any token, ours or not."""
        try:
            form = await read_form(request)
            address = request.client.host if request.client else None
            await run(lambda: identity().revoke(form, address=address))
        except OAuthError as exc:
            return _error(exc)
        except Exception as exc:
            return _failed(exc)
        return Response(status_code=200, headers=NO_STORE)

    async def jwks(_: Request) -> Response:
        """The public signing keys."""
        try:
            keys = await run(lambda: identity().jwks())
        except Exception as exc:
            return _failed(exc)
        # Short: verifiers must see a rotated key soon; retired keys stay published long after that anyway.
        return JSONResponse(keys, headers={"Cache-Control": "public, max-age=60"})

    async def smart(request: Request) -> Response:
        """SMART discovery."""
        candidate = f"{request.url.scheme}://{request.url.netloc}"

        def document() -> dict[str, Any]:
            service = identity()
            return service.smart_configuration(discovery_root(service, candidate))

        try:
            body = await run(document)
        except Exception as exc:
            return _failed(exc)
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})

    return [
        Route("/auth/token", token, methods=["POST"]),
        Route("/auth/revoke", revoke, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/smart-configuration", smart, methods=["GET"]),
        Route("/fhir/.well-known/smart-configuration", smart, methods=["GET"]),
    ]
