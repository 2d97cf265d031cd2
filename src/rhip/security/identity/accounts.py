"""Administration of users and clients: add, list, disable, enable, unlock, reset a password, second factors."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from rhip.core.errors import InvalidRequest, ResourceNotFound, RhipError
from rhip.db.engine import Database
from rhip.security.identity import repository as sql
from rhip.security.identity import totp
from rhip.security.identity.auditing import REFUSED, IdentityAudit
from rhip.security.identity.jwksource import check_location, parse_jwks, select_key
from rhip.security.identity.passwords import Passwords
from rhip.security.identity.records import Client, User, client_from_row, user_from_row
from rhip.security.identity.roles import client_role, user_role
from rhip.security.identity.sealing import Sealer
from rhip.security.scopes import parse_scopes

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
DISTRICT = re.compile(r"^[0-9]{2,12}$")
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
ASSERTION_ALGS = ("RS384", "ES384", "RS256", "ES256")


def _check(pattern: re.Pattern[str], value: str | None, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not pattern.match(value):
        raise InvalidRequest(f"{what} {value[:70]!r} is not valid")
    return value


def fingerprint(text: str) -> str:
    """A SHA-256 fingerprint in the stored form (lower-case hex, no colons); raises InvalidRequest."""
    value = text.strip().replace(":", "").lower()
    if not FINGERPRINT.match(value):
        raise InvalidRequest("a certificate fingerprint is 64 hex digits (SHA-256)")
    return value


def certificate_fingerprint(pem: bytes) -> str:
    """The SHA-256 fingerprint of a PEM certificate's DER encoding (what TLS peers present)."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InvalidRequest("not a PEM certificate") from exc
    return cert.fingerprint(hashes.SHA256()).hex()


def _checked_jwks(jwks: str) -> str:
    try:
        keys = parse_jwks(jwks)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidRequest(str(exc)) from exc
    usable = [k for k in keys if any(select_key([k], k.get("kid"), alg) for alg in ASSERTION_ALGS)]
    if not usable:
        raise InvalidRequest("the JWKS has no RSA or EC (P-256, P-384) signing key")
    return orjson.dumps({"keys": keys}).decode()


class Accounts:
    """Users and clients in the database; every change is audited (subtype ``security-admin``)."""

    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        sealer: Sealer,
        *,
        clock: Callable[[], float] = time.time,
        session_revocation_us: int = 86_400_000_000,
        audit: IdentityAudit | None = None,
    ) -> None:
        self.db = db
        self.audit = audit or IdentityAudit()
        self.session_revocation_us = session_revocation_us  # how long a session's access tokens may live
        self.passwords = passwords
        self.sealer = sealer
        self.clock = clock
        self.on_change: Callable[[], None] = lambda: None  # the service drops its account caches

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    @contextmanager
    def _audited(self, change: str, target: str, *, action: str = "U", **detail: str) -> Iterator[None]:
        """Audit the change the block makes: done, or refused with the refusal's message."""
        try:
            yield
        except RhipError as exc:
            self.audit.admin(
                change, target[:140], outcome=REFUSED, action=action, reason=exc.message, **detail
            )
            raise
        self.audit.admin(change, target, action=action, **detail)

    # --- users -----------------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        institution: str | None = None,
        organization: str | None = None,
        department: str | None = None,
        district: str | None = None,
        patients: Iterable[str] = (),
        with_totp: bool = False,
        issuer_name: str = "rhip",
    ) -> str | None:
        """Add a user; the ``otpauth://`` URI of its new second factor when ``with_totp``."""
        with self._audited(
            "add-user", f"user:{username}", action="C", role=role, totp="yes" if with_totp else ""
        ):
            _check(USERNAME, username, "username")
            try:
                checked_role = user_role(role)
                password_hash = self.passwords.hash(password)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from exc
            patient_ids = [p for p in (_check(FHIR_ID, p, "Patient id") for p in patients) if p]
            secret = totp.new_secret() if with_totp else None
            now = self._now_us()
            values: dict[str, Any] = {
                "username": username,
                "password_hash": password_hash,
                "role": checked_role.value,
                "institution": _check(CODE, institution, "institution code"),
                "organization": _check(FHIR_ID, organization, "Organization id"),
                "department": _check(CODE, department, "department code"),
                "district": _check(DISTRICT, district, "district code"),
                "patients": " ".join(dict.fromkeys(patient_ids)),
                "totp_secret": self.sealer.seal(secret) if secret else None,
                "totp_last_step": None,
                "disabled": False,
                "failed_count": 0,
                "locked_until_us": None,
                "created_us": now,
                "updated_us": now,
            }
            with self.db.write() as conn:
                if not sql.insert_user(conn, values):
                    raise InvalidRequest(f"user {username!r} exists already")
            return totp.provisioning_uri(secret, username, issuer_name) if secret else None

    def list_users(self) -> list[User]:
        """Every user (without secrets), by username."""
        with self.db.read() as conn:
            return [user_from_row(r._mapping) for r in sql.select_users(conn)]

    def get_user(self, username: str) -> User | None:
        """One user, or None."""
        with self.db.read() as conn:
            row = sql.select_user(conn, username)
        return None if row is None else user_from_row(row._mapping)

    def _update_user(self, username: str, values: dict[str, Any], *, end_sessions: bool = False) -> None:
        with self.db.write() as conn:
            if not sql.update_user(conn, username, {**values, "updated_us": self._now_us()}):
                raise ResourceNotFound(f"no user {username!r}")
            if end_sessions:
                now = self._now_us()
                for family in sql.revoke_user_sessions(conn, username, now):
                    # The access tokens of those sessions die with them.
                    expires = now + self.session_revocation_us
                    sql.insert_revoked(conn, f"sid:{family}", now_us=now, expires_us=expires)
        self.on_change()

    def set_user_disabled(self, username: str, disabled: bool) -> None:
        """Disable (its tokens stop working, its sessions end) or enable a user."""
        with self._audited("disable-user" if disabled else "enable-user", f"user:{username}"):
            self._update_user(username, {"disabled": disabled}, end_sessions=disabled)

    def unlock_user(self, username: str) -> None:
        """Lift a lock-out after failed sign-ins."""
        with self._audited("unlock-user", f"user:{username}"):
            self._update_user(username, {"failed_count": 0, "locked_until_us": None})

    def reset_password(self, username: str, password: str) -> None:
        """Set a new password (and unlock); the user's portal sessions end."""
        with self._audited("reset-password", f"user:{username}"):
            try:
                password_hash = self.passwords.hash(password)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from exc
            values = {"password_hash": password_hash, "failed_count": 0, "locked_until_us": None}
            self._update_user(username, values, end_sessions=True)

    def set_totp(self, username: str, enabled: bool, *, issuer_name: str = "rhip") -> str | None:
        """Give a user a new second factor (its ``otpauth://`` URI) or remove it."""
        with self._audited("add-totp" if enabled else "remove-totp", f"user:{username}"):
            secret = totp.new_secret() if enabled else None
            sealed = self.sealer.seal(secret) if secret else None
            self._update_user(username, {"totp_secret": sealed, "totp_last_step": None}, end_sessions=True)
            return totp.provisioning_uri(secret, username, issuer_name) if secret else None

    # --- clients ---------------------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        *,
        scopes: str,
        role: str = "system",
        name: str = "",
        institution: str | None = None,
        organization: str | None = None,
        jwks: str | None = None,
        jwks_url: str | None = None,
        cert_sha256: str | None = None,
    ) -> Client:
        """Register a client with the scopes it may ask for and how it proves who it is."""
        with self._audited("add-client", f"client:{client_id}", action="C", role=role, scopes=scopes):
            _check(CLIENT_ID, client_id, "client id")
            if jwks is not None and jwks_url is not None:
                raise InvalidRequest("register either a JWKS or a JWKS URL, not both")
            try:
                checked_role = client_role(role)
                if jwks_url is not None:
                    check_location(jwks_url)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from exc
            if not parse_scopes(scopes):
                raise InvalidRequest("a client needs at least one SMART scope, e.g. system/*.cruds")
            now = self._now_us()
            values: dict[str, Any] = {
                "client_id": client_id,
                "name": name[:256] or client_id,
                "role": checked_role.value,
                "institution": _check(CODE, institution, "institution code"),
                "organization": _check(FHIR_ID, organization, "Organization id"),
                "scopes": " ".join(sorted(set(scopes.split()))),
                "jwks": _checked_jwks(jwks) if jwks is not None else None,
                "jwks_url": jwks_url,
                "cert_sha256": fingerprint(cert_sha256) if cert_sha256 else None,
                "disabled": False,
                "created_us": now,
                "updated_us": now,
            }
            with self.db.write() as conn:
                if not sql.insert_client(conn, values):
                    raise InvalidRequest(f"client {client_id!r} (or its certificate) is registered already")
            return client_from_row(values)

    def list_clients(self) -> list[Client]:
        """Every registered client, by id."""
        with self.db.read() as conn:
            return [client_from_row(r._mapping) for r in sql.select_clients(conn)]

    def get_client(self, client_id: str) -> Client | None:
        """One client, or None."""
        with self.db.read() as conn:
            row = sql.select_client(conn, client_id)
        return None if row is None else client_from_row(row._mapping)

    def client_by_certificate(self, sha256_hex: str) -> Client | None:
        """The client registered with this TLS certificate fingerprint, or None."""
        with self.db.read() as conn:
            row = sql.select_client_by_cert(conn, sha256_hex)
        return None if row is None else client_from_row(row._mapping)

    def set_client_disabled(self, client_id: str, disabled: bool) -> None:
        """Disable (its tokens stop working) or enable a client."""
        with self._audited("disable-client" if disabled else "enable-client", f"client:{client_id}"):
            with self.db.write() as conn:
                if not sql.update_client(
                    conn, client_id, {"disabled": disabled, "updated_us": self._now_us()}
                ):
                    raise ResourceNotFound(f"no client {client_id!r}")
            self.on_change()
