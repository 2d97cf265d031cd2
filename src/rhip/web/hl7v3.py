"""HTTP routes of the HL7 v3 interaction services: POST /hl7v3/ and /hl7v3/{service}, GET ?wsdl.

The body goes to :class:`~rhip.exchange.hl7v3.service.V3Service` as bytes with its content type, in a worker
thread; the answer comes back with the status and content type the service chose (SOAP 1.2, SOAP 1.1 or
plain XML). A body over the limit is not read in full: its first bytes are kept in the rejects store and
the sender gets an AR (413). ``{service}`` is a service group (person, organization, provider, terminology,
document) or a service name (PatientInfoRegister …); a message posted to the wrong one gets an AR.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rhip.core.errors import Unauthenticated
from rhip.exchange.hl7v3.registry import GROUPS
from rhip.exchange.hl7v3.service import V3Answer, V3Service
from rhip.exchange.hl7v3.wsdl import wsdl
from rhip.security.context import acting_as
from rhip.web.authn import RequestAuthenticator

_KEPT_HEAD = 64 * 1024  # bytes of an oversized body kept for the rejects store
_HELP = (
    "rhip HL7 v3 interaction services. POST an interaction (SOAP 1.2 application/soap+xml, SOAP 1.1 text/xml, "
    "or plain application/xml) here; GET ?wsdl for the WSDL.\n"
)


async def _read_limited(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, or its first bytes and True when it is larger than ``limit``."""
    declared = request.headers.get("content-length", "")
    # Declared larger than the limit: only the head kept for the rejects store is read, the rest never is.
    oversized = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size >= _KEPT_HEAD if oversized else size > limit:
            break
    if oversized or size > limit:
        return b"".join(chunks)[:_KEPT_HEAD], True
    return b"".join(chunks), False


def _response(answer: V3Answer) -> Response:
    headers = {"content-type": answer.content_type}
    if answer.status == 401:
        headers["www-authenticate"] = 'Bearer realm="rhip"'
    return Response(answer.body, status_code=answer.status, headers=headers)


def hl7v3_routes(
    service: Callable[[], V3Service],
    *,
    max_body_bytes: int,
    limiter: anyio.CapacityLimiter | None = None,
    public_base_url: str | None = None,
    auth: RequestAuthenticator | None = None,
) -> list[Route]:
    """The routes; ``service`` gives the (lazily built) V3Service, ``public_base_url`` the address in the WSDL,
    ``auth`` who the caller is (every interaction needs a bearer token; the WSDL does not)."""
    authn = auth or RequestAuthenticator(None, enabled=False)

    async def endpoint(request: Request) -> Response:
        group = request.path_params.get("service")
        if request.method == "GET":
            if not any(key.lower() == "wsdl" for key in request.query_params):
                return PlainTextResponse(_HELP)
            if group and group not in GROUPS:
                return PlainTextResponse(f"no HL7 v3 service group {group[:40]!r}\n", status_code=404)
            base = (
                public_base_url.rstrip("/")
                if public_base_url
                else f"{request.url.scheme}://{request.url.netloc}"
            )
            address = f"{base}{request.url.path}"
            return Response(wsdl(address, group), headers={"content-type": "text/xml; charset=utf-8"})
        content_type = request.headers.get("content-type", "")
        body, too_large = await _read_limited(request, max_body_bytes)
        v3 = service()
        if too_large:
            answer = await anyio.to_thread.run_sync(
                v3.refuse_oversized, content_type, body, max_body_bytes, limiter=limiter
            )
            return _response(answer)
        credentials = authn.credentials(request)

        def handle() -> V3Answer:
            try:
                principal = authn.principal(credentials)
            except Unauthenticated as error:
                return v3.refuse(error, body, content_type)
            with acting_as(principal):
                return v3.handle(body, content_type, service=group)

        return _response(await anyio.to_thread.run_sync(handle, limiter=limiter))

    methods = ["GET", "POST"]
    return [
        Route("/hl7v3", endpoint, methods=methods),
        Route("/hl7v3/", endpoint, methods=methods),
        Route("/hl7v3/{service}", endpoint, methods=methods),
    ]
