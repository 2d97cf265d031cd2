"""Users and clients as the identity service hands them out (never with a password hash or TOTP seed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rhip.security.principal import Role
from rhip.security.scopes import Scope, parse_scopes


@dataclass(frozen=True)
class User:
    """A person who signs in: a portal resident, a clinician, an officer, a statistician, an administrator."""

    username: str
    role: Role
    institution: str | None
    organization: str | None
    department: str | None
    district: str | None
    patients: tuple[str, ...]
    has_totp: bool
    disabled: bool
    failed_count: int
    locked_until_us: int | None
    created_us: int

    @property
    def subject(self) -> str:
        """The principal subject of this user."""
        return f"user:{self.username}"


@dataclass(frozen=True)
class Client:
    """A registered client: an institution's system (private_key_jwt, or a TLS client certificate) or a portal."""

    client_id: str
    name: str
    role: Role
    institution: str | None
    organization: str | None
    scope_text: str
    jwks: str | None
    jwks_url: str | None
    cert_sha256: str | None
    disabled: bool
    created_us: int

    @property
    def scopes(self) -> frozenset[Scope]:
        """The most this client may ask for."""
        return parse_scopes(self.scope_text)

    @property
    def subject(self) -> str:
        """The principal subject of this client."""
        return f"client:{self.client_id}"

    @property
    def has_keys(self) -> bool:
        """Whether it authenticates with private_key_jwt (a portal registered without keys is public)."""
        return bool(self.jwks or self.jwks_url)


def user_from_row(m: Any) -> User:
    """A User from a ``security_user`` row mapping."""
    has_totp = m["has_totp"] if "has_totp" in m else m["totp_secret"] is not None
    return User(
        username=m["username"],
        role=Role(m["role"]),
        institution=m["institution"],
        organization=m["organization"],
        department=m["department"],
        district=m["district"],
        patients=tuple(m["patients"].split()),
        has_totp=bool(has_totp),
        disabled=bool(m["disabled"]),
        failed_count=int(m["failed_count"]),
        locked_until_us=m["locked_until_us"],
        created_us=int(m["created_us"]),
    )


def client_from_row(m: Any) -> Client:
    """A Client from a ``security_client`` row mapping."""
    return Client(
        client_id=m["client_id"],
        name=m["name"],
        role=Role(m["role"]),
        institution=m["institution"],
        organization=m["organization"],
        scope_text=m["scopes"],
        jwks=m["jwks"],
        jwks_url=m["jwks_url"],
        cert_sha256=m["cert_sha256"],
        disabled=bool(m["disabled"]),
        created_us=int(m["created_us"]),
    )
