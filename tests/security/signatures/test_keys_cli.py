"""``rhip keys``: a test CA, TLS server and client certificates that work in a real TLS handshake, signers."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from rhip.cli.keys import keys_app
from rhip.security.signatures.certificates import TrustStore, read_certificates
from rhip.security.signatures.keys import kind_of, load_private_key, same_key
from rhip.security.signatures.provenance import Signer, SignerConfig, Status, Verifier, VerifierConfig
from rhip.security.signatures.targets import SignedTarget

runner = CliRunner()


def run(*args: str | Path, code: int = 0) -> str:
    result = runner.invoke(keys_app, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EC test CA with a server and a client certificate, made through the CLI."""
    root = tmp_path_factory.mktemp("pki")
    run("ca", "--out", root / "ca")
    run(
        "server", "--ca", root / "ca", "--out", root / "server", "--host", "127.0.0.1", "--host", "rhip.local"
    )
    run("client", "--ca", root / "ca", "--name", "his-001", "--out", root / "client")
    return root


def test_files_and_permissions(pki: Path) -> None:
    for folder, stem in (("ca", "ca"), ("server", "server"), ("client", "client")):
        assert mode(pki / folder / f"{stem}.key") == 0o600
        assert mode(pki / folder / f"{stem}.pem") == 0o644
        key = load_private_key((pki / folder / f"{stem}.key").read_bytes())
        assert same_key(key, read_certificates(pki / folder / f"{stem}.pem")[0].public_key)
    assert mode(pki / "ca") == 0o700
    ca = read_certificates(pki / "ca" / "ca.pem")[0]
    assert ca.is_ca and ca.common_name == "RHIP Test CA" and kind_of(ca.public_key) == "ec"
    now = datetime.now(UTC)
    store = TrustStore([ca])
    for folder in ("server", "client"):
        assert store.check(read_certificates(pki / folder / f"{folder}.pem"), at=now, usages=()).trusted


def test_server_certificate_names_its_hosts(pki: Path) -> None:
    cert = x509.load_pem_x509_certificate((pki / "server" / "server.pem").read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["rhip.local"]
    assert alt.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [u.dotted_string for u in usage] == ["1.3.6.1.5.5.7.3.1"]


def test_client_fingerprint_is_printed(tmp_path: Path, pki: Path) -> None:
    output = run("client", "--ca", pki / "ca", "--name", "lab-002", "--out", tmp_path / "c")
    der = read_certificates(tmp_path / "c" / "client.pem")[0].der
    assert hashlib.sha256(der).hexdigest() in output
    assert "rhip clients add --client-id lab-002 --role system --scopes 'system/*.cruds' --cert" in output
    assert "PRIVATE" not in output


def test_mutual_tls_handshake_with_the_certificates(pki: Path) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki / "server" / "server.pem", pki / "server" / "server.key")
    server_ctx.load_verify_locations(pki / "ca" / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(pki / "ca" / "ca.pem"))
    client_ctx.load_cert_chain(pki / "client" / "client.pem", pki / "client" / "client.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(tls.recv(5))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"hello")
            assert tls.recv(5) == b"hello"
        thread.join(10)
    finally:
        listener.close()
    subject = dict(x[0] for x in seen["peer"]["subject"])  # type: ignore[index]
    assert subject["commonName"] == "his-001"


@pytest.mark.parametrize(
    ("ca_alg", "signer_alg"), [("sm2", "sm2"), ("ec", "sm2"), ("rsa", "ec"), ("sm2", "rsa")]
)
def test_signers_sign_documents_that_verify(tmp_path: Path, ca_alg: str, signer_alg: str) -> None:
    run("ca", "--out", tmp_path / "ca", "--algorithm", ca_alg, "--name", "卫健委测试CA")
    output = run(
        "signer",
        "--ca",
        tmp_path / "ca",
        "--name",
        "市第一人民医院",
        "--algorithm",
        signer_alg,
        "--out",
        tmp_path / "s",
    )
    assert "RHIP_SECURITY__SIGNING_KEY=" in output
    assert mode(tmp_path / "s" / "signer.key") == 0o600
    cert = read_certificates(tmp_path / "s" / "signer.pem")[0]
    assert cert.key_usage == {"digital_signature", "non_repudiation"}
    assert kind_of(cert.public_key) == signer_alg
    signer = Signer.from_config(SignerConfig(tmp_path / "s" / "signer.key", tmp_path / "s" / "signer.pem"))
    verifier = Verifier.from_config(VerifierConfig(tmp_path / "ca" / "ca.pem"))
    target = SignedTarget("ServiceRequest", "r1", 1, {"resourceType": "ServiceRequest", "id": "r1"})
    [result] = verifier.verify_provenance(signer.provenance(target), target)
    assert result.status is Status.VALID, result.reason


def test_refusals(tmp_path: Path, pki: Path) -> None:
    run("ca", "--out", tmp_path / "sm2", "--algorithm", "sm2")
    output = run("server", "--ca", tmp_path / "sm2", "--out", tmp_path / "srv", code=2)
    assert "EC or RSA CA" in output
    run("client", "--ca", tmp_path / "sm2", "--name", "x", "--out", tmp_path / "cl", code=2)
    assert "exists" in run("ca", "--out", pki / "ca", code=2)
    assert "cannot read the CA" in run(
        "signer", "--ca", tmp_path / "none", "--name", "x", "--out", tmp_path / "o", code=2
    )
    run("signer", "--ca", pki / "server", "--name", "x", "--out", tmp_path / "o", code=2)  # not a CA folder
    # --force replaces, keeping the key private.
    before = (pki / "client" / "client.pem").read_bytes()
    run("client", "--ca", pki / "ca", "--name", "his-001", "--out", pki / "client", "--force")
    assert (pki / "client" / "client.pem").read_bytes() != before
    assert mode(pki / "client" / "client.key") == 0o600


def test_rsa_ca_and_server(tmp_path: Path) -> None:
    run("ca", "--out", tmp_path / "ca", "--algorithm", "rsa", "--days", "30")
    run("server", "--ca", tmp_path / "ca", "--out", tmp_path / "srv", "--algorithm", "rsa")
    cert = read_certificates(tmp_path / "srv" / "server.pem")[0]
    assert kind_of(cert.public_key) == "rsa" and cert.common_name == "localhost"
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
        tmp_path / "srv" / "server.pem", tmp_path / "srv" / "server.key"
    )
