"""``rhip users``, ``rhip clients`` and ``rhip tokens``: accounts, registered clients and signing keys.

They work on the local database directly (an operator at the server's command line), like ``rhip db``.
Secrets never reach the screen except what the operator asks for: a new TOTP URI, an issued token.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from rhip.core.errors import RhipError

if TYPE_CHECKING:
    from rhip.security.identity.service import IdentityService

T = TypeVar("T")
users_app = typer.Typer(
    help="Portal and staff accounts (add, list, disable, enable, unlock, reset-password)",
    no_args_is_help=True,
)
clients_app = typer.Typer(
    help="Registered clients: institution systems and portals (add, list, disable)", no_args_is_help=True
)
tokens_app = typer.Typer(
    help="Token signing keys and operator-issued tokens (rotate-key, issue)", no_args_is_help=True
)
console = Console(stderr=True)
out = Console()


@contextmanager
def _identity() -> Iterator[IdentityService]:
    """The identity service on the configured database (its schema must be current); every change and
    every issued token is audited (``security-admin``, as ``cli:<operator>``), written before it returns."""
    from rhip.bootstrap.security import identity_config
    from rhip.cli.main import _database, _require_schema, _settings
    from rhip.security.audit.trail import AuditConfig, AuditTrail
    from rhip.security.identity.service import IdentityService

    settings = _settings()
    _require_schema(settings)
    db = _database(settings)
    trail = AuditTrail(db, AuditConfig(algorithm=settings.security.audit_hash))
    try:
        yield IdentityService(db, identity_config(settings), audit=trail)
    finally:
        try:
            trail.close()  # writes the entries still buffered
        finally:
            db.dispose()


def _run(action: Callable[[IdentityService], T]) -> T:
    """Run ``action`` on the identity service; a refusal is a message and exit status 1."""
    with _identity() as identity:
        try:
            return action(identity)
        except RhipError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def _when(us: int | None) -> str:
    return "" if us is None else datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# --- users -------------------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Option(help="sign-in name (letters, digits, . _ @ -)")],
    role: Annotated[str, typer.Option(help="admin, clinician, public-health, statistician or resident")],
    institution: Annotated[str | None, typer.Option(help="institution code (医疗机构代码)")] = None,
    organization: Annotated[str | None, typer.Option(help="the institution's Organization id")] = None,
    department: Annotated[str | None, typer.Option(help="department code (clinicians)")] = None,
    district: Annotated[str | None, typer.Option(help="GB/T 2260 district code (public health)")] = None,
    patient: Annotated[
        list[str] | None, typer.Option(help="Patient id a resident may see (own, children); repeatable")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
    totp: Annotated[
        bool, typer.Option("--totp", help="require a one-time code; prints its otpauth URI")
    ] = False,
) -> None:
    """Add a user account."""
    password = _password(password_stdin)
    uri = _run(
        lambda s: s.accounts.add_user(
            username,
            password,
            role,
            institution=institution,
            organization=organization,
            department=department,
            district=district,
            patients=patient or (),
            with_totp=totp,
        )
    )
    console.print(f"user {username} added ({role})")
    if uri:
        console.print("scan this into an authenticator app (shown once):")
        typer.echo(uri)


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a line")] = False,
) -> None:
    """List user accounts (no secrets)."""
    users = _run(lambda s: s.accounts.list_users())
    if as_json:
        for u in users:
            row = {**asdict(u), "role": u.role.value}
            out.print(orjson.dumps(row).decode(), soft_wrap=True, highlight=False)
        return
    table = Table(title=f"{len(users)} user(s)")
    for column in ("username", "role", "institution", "department", "district", "patients", "totp", "state"):
        table.add_column(column)
    for u in users:
        state = (
            "disabled"
            if u.disabled
            else f"locked until {_when(u.locked_until_us)}"
            if u.locked_until_us
            else "active"
        )
        table.add_row(
            u.username,
            u.role.value,
            u.institution or "",
            u.department or "",
            u.district or "",
            str(len(u.patients)) if u.patients else "",
            "yes" if u.has_totp else "",
            state,
        )
    out.print(table)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: its tokens stop working, its sessions end."""
    _run(lambda s: s.accounts.set_user_disabled(username, True))
    console.print(f"user {username} disabled")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again."""
    _run(lambda s: s.accounts.set_user_disabled(username, False))
    console.print(f"user {username} enabled")


@users_app.command("unlock")
def users_unlock(username: str) -> None:
    """Lift a lock-out after repeated failed sign-ins."""
    _run(lambda s: s.accounts.unlock_user(username))
    console.print(f"user {username} unlocked")


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Set a new password (and unlock); the user's sessions end."""
    password = _password(password_stdin)
    _run(lambda s: s.accounts.reset_password(username, password))
    console.print(f"password of {username} reset")


@users_app.command("totp")
def users_totp(
    username: str,
    remove: Annotated[bool, typer.Option("--remove", help="remove the second factor instead")] = False,
) -> None:
    """Give a user a new TOTP second factor (prints its otpauth URI once), or remove it."""
    uri = _run(lambda s: s.accounts.set_totp(username, not remove))
    if uri:
        typer.echo(uri)
    else:
        console.print(f"second factor of {username} removed")


# --- clients -----------------------------------------------------------------------------------------------


@clients_app.command("add")
def clients_add(
    client_id: Annotated[str, typer.Option(help="the client's id (iss and sub of its assertions)")],
    scopes: Annotated[str, typer.Option(help="SMART scopes it may ask for, e.g. 'system/*.cruds'")],
    role: Annotated[str, typer.Option(help="system (an institution's system) or admin")] = "system",
    name: Annotated[str, typer.Option(help="a label for people")] = "",
    institution: Annotated[str | None, typer.Option(help="institution code it writes as")] = None,
    organization: Annotated[str | None, typer.Option(help="the institution's Organization id")] = None,
    jwks: Annotated[Path | None, typer.Option(help="file with its public JWKS (private_key_jwt)")] = None,
    jwks_url: Annotated[str | None, typer.Option(help="https URL (or file path) of its JWKS")] = None,
    cert: Annotated[
        Path | None, typer.Option(help="its TLS client certificate (PEM), for MLLP/HTTPS")
    ] = None,
    cert_sha256: Annotated[str | None, typer.Option(help="or the certificate's SHA-256 fingerprint")] = None,
) -> None:
    """Register a client with its public keys and/or its TLS certificate."""
    from rhip.security.identity.accounts import certificate_fingerprint

    try:
        inline = jwks.read_text(encoding="utf-8") if jwks else None
        fingerprint = certificate_fingerprint(cert.read_bytes()) if cert else cert_sha256
    except (OSError, RhipError) as exc:
        console.print(f"[red]{getattr(exc, 'message', exc)}[/red]")
        raise typer.Exit(1) from None
    client = _run(
        lambda s: s.accounts.add_client(
            client_id,
            scopes=scopes,
            role=role,
            name=name,
            institution=institution,
            organization=organization,
            jwks=inline,
            jwks_url=jwks_url,
            cert_sha256=fingerprint,
        )
    )
    console.print(f"client {client.client_id} registered ({client.role.value}: {client.scope_text})")


@clients_app.command("list")
def clients_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a line")] = False,
) -> None:
    """List registered clients."""
    clients = _run(lambda s: s.accounts.list_clients())
    if as_json:
        for c in clients:
            row = {**asdict(c), "role": c.role.value, "jwks": bool(c.jwks)}
            out.print(orjson.dumps(row).decode(), soft_wrap=True, highlight=False)
        return
    table = Table(title=f"{len(clients)} client(s)")
    for column in ("client id", "role", "institution", "scopes", "keys", "certificate", "state"):
        table.add_column(column)
    for c in clients:
        keys = "inline JWKS" if c.jwks else c.jwks_url or ""
        certificate = f"{c.cert_sha256[:16]}…" if c.cert_sha256 else ""
        state = "disabled" if c.disabled else "active"
        table.add_row(c.client_id, c.role.value, c.institution or "", c.scope_text, keys, certificate, state)
    out.print(table)


@clients_app.command("disable")
def clients_disable(client_id: str) -> None:
    """Disable a client: its tokens and certificate stop working."""
    _run(lambda s: s.accounts.set_client_disabled(client_id, True))
    console.print(f"client {client_id} disabled")


@clients_app.command("enable")
def clients_enable(client_id: str) -> None:
    """Enable a disabled client again."""
    _run(lambda s: s.accounts.set_client_disabled(client_id, False))
    console.print(f"client {client_id} enabled")


# --- tokens ------------------------------------------------------------------------------------------------


@tokens_app.command("rotate-key")
def tokens_rotate_key(
    withdraw_old: Annotated[
        bool, typer.Option("--withdraw-old", help="a compromised key: its tokens stop working at once")
    ] = False,
) -> None:
    """Sign tokens with a new key from now; old keys stay published until their tokens expire."""
    kid = _run(lambda s: s.rotate_key(withdraw_old=withdraw_old))
    console.print(f"signing key {kid} in use{'; older keys withdrawn' if withdraw_old else ''}")


@tokens_app.command("issue")
def tokens_issue(
    username: Annotated[str | None, typer.Option(help="a token for this user")] = None,
    client_id: Annotated[str | None, typer.Option(help="or for this client")] = None,
    scopes: Annotated[
        str | None, typer.Option(help="scopes asked for (default: all the account may have)")
    ] = None,
    minutes: Annotated[int | None, typer.Option(help="lifetime (default: the access token lifetime)")] = None,
) -> None:
    """Print an access token for a user or client (for scripts and tests; an operator's privilege)."""
    token = _run(
        lambda s: s.issue_token(username=username, client_id=client_id, scopes=scopes, minutes=minutes)
    )
    typer.echo(token)
