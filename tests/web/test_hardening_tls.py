"""HTTPS: uvicorn with rhip's TLS options (TLS 1.2+, optional client certificates that reach the
application in ``scope["extensions"]["tls"]``), and ``rhip serve`` over HTTPS with one and two workers.

Certificates are made here with ``cryptography``: a test CA, a server certificate for 127.0.0.1, a client
certificate of that CA and one of a stranger CA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.types import Receive, Scope, Send

from rhip.bootstrap.settings import ServerSettings
from rhip.cli.supervisor import tls_options
from rhip.web.tls import client_certificate_sha256

STARTUP_S = 60.0


@dataclass(frozen=True)
class Issued:
    """A key and certificate on disk."""

    cert: Path
    key: Path
    der: bytes


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rhip test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _write(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> Issued:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Issued(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    """A test CA with a server and a client certificate, and a client certificate of another CA."""

    ca: Issued
    server: Issued
    client: Issued
    stranger: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("rhip test CA", ca_key, None, ca=True)
    other_cert = _certificate("stranger CA", other_key, None, ca=True)
    issued = {}
    for stem, issuer, server in (
        ("server", (ca_cert.subject, ca_key), True),
        ("client", (ca_cert.subject, ca_key), False),
        ("stranger", (other_cert.subject, other_key), False),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        issued[stem] = _write(
            directory, stem, key, _certificate(f"{stem}.example.cn", key, issuer, server=server)
        )
    return Pki(
        _write(directory, "ca", ca_key, ca_cert), issued["server"], issued["client"], issued["stranger"]
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client_context(pki: Pki, cert: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return context


# -- uvicorn in process, with the options `rhip serve` gives it ----------------------------------------
async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what the TLS extension says about the client."""
    tls = scope.get("extensions", {}).get("tls", {})
    body = httpx.QueryParams(
        {
            "scheme": scope["scheme"],
            "sha256": client_certificate_sha256(scope) or "",
            "name": tls.get("client_cert_name") or "",
            "version": str(tls.get("tls_version") or ""),
        }
    )
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(body).encode()})


@pytest.fixture(params=["rhip.web.tls:HttpTlsProtocol", "rhip.web.tls:H11TlsProtocol"])
def https_server(request: pytest.FixtureRequest, pki: Pki) -> Iterator[str]:
    options = tls_options(
        ServerSettings(
            tls_cert=str(pki.server.cert), tls_key=str(pki.server.key), tls_client_ca=str(pki.ca.cert)
        )
    )
    options["http"] = request.param
    port = _free_port()
    config = uvicorn.Config(
        _echo, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False, **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    assert config.ssl is not None and config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    try:
        yield f"https://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)


def _get(url: str, context: ssl.SSLContext) -> dict[str, str]:
    response = httpx.get(url, verify=context, timeout=10)
    assert response.status_code == 200
    return dict(httpx.QueryParams(response.text))


def test_a_client_without_certificate_is_served(https_server: str, pki: Pki) -> None:
    seen = _get(https_server, _client_context(pki))
    assert seen == {"scheme": "https", "sha256": "", "name": "", "version": str(0x0304)}


def test_a_client_certificate_reaches_the_application(https_server: str, pki: Pki) -> None:
    seen = _get(https_server, _client_context(pki, pki.client))
    assert seen["sha256"] == hashlib.sha256(pki.client.der).hexdigest()
    assert seen["name"] == "CN=client.example.cn,O=rhip test,C=CN"


def test_a_certificate_of_another_ca_ends_the_handshake(https_server: str, pki: Pki) -> None:
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        _get(https_server, _client_context(pki, pki.stranger))


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_before_1_2_is_refused(https_server: str, pki: Pki) -> None:
    context = _client_context(pki)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        _get(https_server, context)


def test_options_need_a_certificate() -> None:
    assert tls_options(ServerSettings()) == {}
    with pytest.raises(ValueError, match="TLS_CERT"):
        tls_options(ServerSettings(tls_key="/etc/rhip/key.pem"))
    plain = tls_options(ServerSettings(tls_cert="/etc/rhip/cert.pem"))
    assert "ssl_ca_certs" not in plain and "http" not in plain  # no client certificates: stock protocol


# -- `rhip serve` over HTTPS ------------------------------------------------------------------------------
def _cli_env(workdir: Path, pki: Pki) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RHIP_") or k.startswith("RHIP_SECURITY__")
    }  # the suite's security setting (tests/conftest.py) stays
    env |= {
        "RHIP_DATABASE_URL": f"sqlite:///{workdir}/rhip.db",
        "PYTHONUNBUFFERED": "1",
        "RHIP_EXCHANGE__MLLP__PORT": str(_free_port()),
        "RHIP_SERVER__TLS_CERT": str(pki.server.cert),
        "RHIP_SERVER__TLS_KEY": str(pki.server.key),
        "RHIP_SERVER__TLS_CLIENT_CA": str(pki.ca.cert),
    }
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_rhip_serve_speaks_https(workers: int, pki: Pki, tmp_path: Path) -> None:
    env = _cli_env(tmp_path, pki)
    migrated = subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rhip.cli.main", "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"rhip serve exited with {process.returncode}:\n{log.read_text(errors='replace')}"
                )
            try:
                if httpx.get(f"{url}/readyz", verify=_client_context(pki), timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"rhip serve was not ready after {STARTUP_S} s:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.2)
        healthy = httpx.get(f"{url}/healthz", verify=_client_context(pki, pki.client), timeout=10)
        assert healthy.status_code == 200
        assert healthy.json()["status"] == "ok"
        assert "https://" in log.read_text(errors="replace")  # the banner names the scheme served
        with pytest.raises(httpx.TransportError):  # plain HTTP on the HTTPS port is no conversation
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
    finally:
        _stop(process)
