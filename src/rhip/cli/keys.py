"""``rhip keys``: a test CA and the certificates the platform uses (TLS server and client, document signing).

For tests, demonstrations and a first installation: a production platform takes its certificates from the
commission's CA (or the national SM2 CA) and only points the settings at them. Private keys are written
readable by their owner only (0600) and never printed.
"""

from __future__ import annotations

import os
import shlex
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rhip.security.signatures.certificates import Certificate
    from rhip.security.signatures.keys import PrivateKey

keys_app = typer.Typer(
    help="Test CA and certificates: TLS server and client, document signing (EC, RSA, SM2)",
    no_args_is_help=True,
)


class Algorithm(StrEnum):
    """Key algorithms of a CA or a signer."""

    ec = "ec"
    rsa = "rsa"
    sm2 = "sm2"


class TlsAlgorithm(StrEnum):
    """Key algorithms TLS stacks (OpenSSL in uvicorn, the MLLP listener) accept."""

    ec = "ec"
    rsa = "rsa"


_Force = Annotated[bool, typer.Option("--force", help="overwrite files that exist")]
_Ca = Annotated[Path, typer.Option("--ca", help="folder of the CA (ca.key, ca.pem) from `rhip keys ca`")]
_Out = Annotated[Path, typer.Option("--out", help="folder to write the key and certificate into")]


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def _write(path: Path, data: bytes, *, secret: bool, force: bool) -> None:
    """Write a file; a key is created 0600 from the start (never readable by others, even for a moment)."""
    if path.exists() and not force:
        raise _fail(f"{path} exists (use --force to replace it)")
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _save(out: Path, stem: str, key: PrivateKey, chain: list[Certificate], force: bool) -> tuple[Path, Path]:
    from rhip.security.signatures.keys import private_key_pem

    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, cert_path = out / f"{stem}.key", out / f"{stem}.pem"
    for path in (key_path, cert_path):
        if path.exists() and not force:
            raise _fail(f"{path} exists (use --force to replace it)")
    _write(key_path, private_key_pem(key), secret=True, force=force)
    _write(cert_path, b"".join(c.pem() for c in chain), secret=False, force=force)
    return key_path, cert_path


def _load_ca(folder: Path) -> tuple[PrivateKey, Certificate]:
    from rhip.security.signatures.certificates import CertificateError, read_certificates
    from rhip.security.signatures.keys import InvalidKey, load_private_key, same_key

    try:
        key = load_private_key((folder / "ca.key").read_bytes())
        cert = read_certificates(folder / "ca.pem")[0]
    except OSError as exc:
        raise _fail(
            f"cannot read the CA in {folder}: {exc.strerror} (create it with `rhip keys ca`)"
        ) from exc
    except (InvalidKey, CertificateError) as exc:
        raise _fail(f"the CA in {folder} cannot be used: {exc}") from exc
    if not cert.is_ca or not same_key(key, cert.public_key):
        raise _fail(f"{folder}/ca.pem is not a CA certificate of {folder}/ca.key")
    return key, cert


def _describe(label: str, cert: Certificate, key_path: Path, cert_path: Path) -> None:
    typer.echo(f"{label}: {cert.subject}")
    typer.echo(f"  key          {key_path} (0600)")
    typer.echo(f"  certificate  {cert_path}")
    typer.echo(f"  valid until  {cert.not_after.date().isoformat()}")
    typer.echo(f"  sha256       {cert.fingerprint}")


@keys_app.command()
def ca(
    out: _Out,
    algorithm: Annotated[Algorithm, typer.Option(help="key algorithm of the CA")] = Algorithm.ec,
    name: Annotated[str, typer.Option(help="common name of the CA")] = "RHIP Test CA",
    days: Annotated[int, typer.Option(min=1, help="validity in days")] = 3650,
    force: _Force = False,
) -> None:
    """Create a self-signed test CA (ca.key, ca.pem): the bundle TLS clients and signatures chain to."""
    from rhip.security.signatures.issue import ca_profile, self_signed
    from rhip.security.signatures.keys import generate_key

    key = generate_key(algorithm.value)
    cert = self_signed(key, ca_profile(name, days=days))
    key_path, cert_path = _save(out, "ca", key, [cert], force)
    _describe("CA", cert, key_path, cert_path)
    typer.echo(
        f"trust it with RHIP_SECURITY__CA_BUNDLE={cert_path} and RHIP_SERVER__TLS_CLIENT_CA={cert_path}"
    )


@keys_app.command()
def server(
    ca: _Ca,
    out: _Out,
    host: Annotated[
        list[str] | None, typer.Option(help="DNS name or IP address of the server (repeat for several)")
    ] = None,
    algorithm: Annotated[TlsAlgorithm, typer.Option(help="key algorithm")] = TlsAlgorithm.ec,
    days: Annotated[int, typer.Option(min=1, help="validity in days")] = 825,
    force: _Force = False,
) -> None:
    """Create a TLS server certificate (server.key, server.pem) for HTTPS and MLLP over TLS."""
    from rhip.security.signatures.issue import issue, tls_profile
    from rhip.security.signatures.keys import generate_key, public_of

    hosts = tuple(dict.fromkeys(host or ["localhost", "127.0.0.1"]))
    ca_key, ca_cert = _tls_ca(ca)
    key = generate_key(algorithm.value)
    cert = issue(public_of(key), tls_profile(hosts[0], server=True, hosts=hosts, days=days), ca_key, ca_cert)
    key_path, cert_path = _save(out, "server", key, [cert], force)
    _describe("TLS server", cert, key_path, cert_path)
    typer.echo(f"  hosts        {', '.join(hosts)}")
    typer.echo(f"serve with RHIP_SERVER__TLS_CERT={cert_path} RHIP_SERVER__TLS_KEY={key_path}")


@keys_app.command()
def client(
    ca: _Ca,
    name: Annotated[str, typer.Option(help="the client's name (its client id), the certificate's CN")],
    out: _Out,
    algorithm: Annotated[TlsAlgorithm, typer.Option(help="key algorithm")] = TlsAlgorithm.ec,
    days: Annotated[int, typer.Option(min=1, help="validity in days")] = 825,
    institution: Annotated[
        str | None, typer.Option(help="institution code of the system, for the printed registration command")
    ] = None,
    force: _Force = False,
) -> None:
    """Create a TLS client certificate (client.key, client.pem); prints how to register it."""
    from rhip.security.signatures.issue import issue, tls_profile
    from rhip.security.signatures.keys import generate_key, public_of

    ca_key, ca_cert = _tls_ca(ca)
    key = generate_key(algorithm.value)
    cert = issue(public_of(key), tls_profile(name, server=False, days=days), ca_key, ca_cert)
    key_path, cert_path = _save(out, "client", key, [cert], force)
    _describe("TLS client", cert, key_path, cert_path)
    typer.echo("register it with:")
    typer.echo(f"  {register_command(name, cert_path, institution)}")
    if institution is None:
        typer.echo("  (an institution's system: add --institution <its institution code>)")


def register_command(client_id: str, cert_path: Path, institution: str | None = None) -> str:
    """The ``rhip clients add`` command that registers a TLS client certificate (quoted for a shell)."""
    words = ["rhip", "clients", "add", "--client-id", client_id, "--role", "system"]
    if institution:
        words += ["--institution", institution]
    words += ["--scopes", "system/*.cruds", "--cert", str(cert_path)]
    return shlex.join(words)


@keys_app.command()
def signer(
    ca: _Ca,
    name: Annotated[str, typer.Option(help="the signing organization or practitioner, the certificate's CN")],
    out: _Out,
    algorithm: Annotated[Algorithm, typer.Option(help="key algorithm")] = Algorithm.sm2,
    organization: Annotated[str | None, typer.Option(help="the organization (O); default: the name")] = None,
    days: Annotated[int, typer.Option(min=1, help="validity in days")] = 730,
    force: _Force = False,
) -> None:
    """Create a document-signing certificate (signer.key, signer.pem): digitalSignature + nonRepudiation."""
    from rhip.security.signatures.issue import issue, signer_profile
    from rhip.security.signatures.keys import generate_key, public_of

    ca_key, ca_cert = _load_ca(ca)
    key = generate_key(algorithm.value)
    cert = issue(public_of(key), signer_profile(name, days=days, organization=organization), ca_key, ca_cert)
    key_path, cert_path = _save(out, "signer", key, [cert], force)
    _describe("Document signer", cert, key_path, cert_path)
    typer.echo(f"sign with RHIP_SECURITY__SIGNING_KEY={key_path} RHIP_SECURITY__SIGNING_CERT={cert_path}")


def _tls_ca(folder: Path) -> tuple[PrivateKey, Certificate]:
    from rhip.security.signatures.keys import kind_of

    key, cert = _load_ca(folder)
    if kind_of(key) == "sm2":
        raise _fail(
            "TLS certificates need an EC or RSA CA (TLS stacks do not accept SM2 certificates): "
            "create one with `rhip keys ca --algorithm ec`"
        )
    return key, cert
