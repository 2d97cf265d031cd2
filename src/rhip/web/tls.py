"""The client certificate of an HTTPS request, in the ASGI TLS extension.

uvicorn verifies client certificates (``ssl_ca_certs`` with ``CERT_OPTIONAL``) but does not hand them to
the application: its request scope has no ``extensions["tls"]``. ``rhip serve`` therefore runs uvicorn
with the HTTP protocols below (``Config(http="rhip.web.tls:…")``), which add the extension of the ASGI
spec to every request of a TLS connection::

    scope["extensions"]["tls"] = {
        "server_cert": None,                 # not provided
        "client_cert_chain": [pem, ...],     # the peer's certificate only (Python < 3.13 gives no chain)
        "client_cert_name": "CN=…,O=…",      # RFC 4514, or None without a certificate
        "client_cert_error": None,           # a certificate that failed verification ends the handshake
        "tls_version": 0x0304,
        "cipher_suite": None,                # Python gives the name only
    }

Only certificates that chain to ``tls_client_ca`` get this far. ``client_certificate_sha256`` gives the
fingerprint that registered clients are found by.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from cryptography import x509
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope

TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection, or None when it is not TLS."""
    ssl_object = transport.get_extra_info("ssl_object")  # an ssl.SSLObject, with asyncio's loop or uvloop
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    name = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def with_tls_extension(app: ASGI3Application, extension: dict[str, Any]) -> ASGI3Application:
    """``app`` with ``extension`` put in the scope of every request (the connection's own copy)."""

    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        plain = cast("dict[str, Any]", scope)  # uvicorn's TypedDict knows no TLS extension
        plain["extensions"] = {**(plain.get("extensions") or {}), "tls": dict(extension)}
        await app(scope, receive, send)

    return wrapped


class H11TlsProtocol(H11Protocol):
    """uvicorn's h11 protocol, adding the TLS extension to the requests of its connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection; remember its certificate."""
        super().connection_made(transport)
        extension = tls_extension(transport)
        if extension is not None:
            self.app = with_tls_extension(self.app, extension)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional in uvicorn; h11 is always there
    HttpTlsProtocol: type[asyncio.Protocol] = H11TlsProtocol
else:

    class _HttpToolsTls(HttpToolsProtocol):
        """uvicorn's httptools protocol, adding the TLS extension to the requests of its connection."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            """Start the connection; remember its certificate."""
            super().connection_made(transport)
            extension = tls_extension(transport)
            if extension is not None:
                self.app = with_tls_extension(self.app, extension)

    HttpTlsProtocol = _HttpToolsTls

# What ``rhip serve`` names in uvicorn's Config(http=...): the faster protocol when it is installed.
PROTOCOL = "rhip.web.tls:HttpTlsProtocol"


def client_certificate_der(scope: Mapping[str, Any]) -> bytes | None:
    """The DER bytes of the request's verified client certificate, or None."""
    tls = (scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain:
        return None
    pem = str(chain[0])
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    return base64.b64decode(body)


def client_certificate_sha256(scope: Mapping[str, Any]) -> str | None:
    """The SHA-256 fingerprint (lower-case hex) of the request's client certificate, or None."""
    der = client_certificate_der(scope)
    return hashlib.sha256(der).hexdigest() if der is not None else None
