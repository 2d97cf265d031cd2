"""HTTP routes of the identity service: the OAuth 2.0 token and revocation endpoints, the JWKS and SMART
discovery.

``POST /auth/token`` and ``POST /auth/revoke`` take ``application/x-www-form-urlencoded`` bodies (RFC 6749
§4.4, RFC 7009) and answer JSON with ``Cache-Control: no-store``; errors are RFC 6749 §5.2 bodies
(``{"error": …, "error_description": …}``). ``GET /.well-known/jwks.json`` publishes the signing keys,
``GET /.well-known/smart-configuration`` (also under ``/fhir``) the endpoints and capabilities. The work runs
in worker threads under the application's limiter (password hashing and the database block).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rhip.core.errors import RhipError
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.service import IdentityService

log = logging.getLogger("rhip.web.auth")
MAX_FORM_BYTES = 64 * 1024  # a token request is a few kilobytes (a client assertion with an RSA signature)
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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


def _error(exc: OAuthError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status, headers=NO_STORE)


def _server_error(exc: RhipError) -> Response:
    if exc.http_status >= 500:
        log.warning("the identity service could not answer: %s", exc.code)
        return _error(OAuthError("temporarily_unavailable", "try again shortly"))
    return _error(OAuthError("invalid_request", exc.message))


def auth_routes(
    identity: Callable[[], IdentityService],
    *,
    limiter: anyio.CapacityLimiter | None = None,
    public_base_url: str | None = None,
) -> list[Route]:
    """The routes; ``identity`` gives the (lazily built) service, ``public_base_url`` the server's public root.

    ``public_base_url``: the URL clients reach the server at (``https://rhip.example.cn``; a ``/fhir``
    suffix is dropped); without it, the scheme and host the request came in on.
    """
    root = public_base_url.rstrip("/").removesuffix("/fhir") if public_base_url else None

    def base(request: Request) -> str:
        return root or f"{request.url.scheme}://{request.url.netloc}"

    async def run(job: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(job, limiter=limiter)

    async def token(request: Request) -> Response:
        try:
            form = await read_form(request)
            address = request.client.host if request.client else None
            job = partial(identity().token, form, token_url=f"{base(request)}/auth/token", address=address)
            body = await run(job)
        except OAuthError as exc:
            return _error(exc)
        except RhipError as exc:
            return _server_error(exc)
        return JSONResponse(body, headers=NO_STORE)

    async def revoke(request: Request) -> Response:
        try:
            form = await read_form(request)
            await run(partial(identity().revoke, form))
        except OAuthError as exc:
            return _error(exc)
        except RhipError as exc:
            return _server_error(exc)
        return Response(status_code=200, headers=NO_STORE)

    async def jwks(_: Request) -> Response:
        keys = await run(identity().jwks)
        # Short: verifiers must see a rotated key soon; retired keys stay published long after that anyway.
        return JSONResponse(keys, headers={"Cache-Control": "public, max-age=60"})

    async def smart(request: Request) -> Response:
        document = identity().smart_configuration(base(request))
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})

    return [
        Route("/auth/token", token, methods=["POST"]),
        Route("/auth/revoke", revoke, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/smart-configuration", smart, methods=["GET"]),
        Route("/fhir/.well-known/smart-configuration", smart, methods=["GET"]),
    ]
