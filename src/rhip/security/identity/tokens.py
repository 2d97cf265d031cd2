"""The platform's access tokens: JWTs (RFC 9068 ``at+jwt``) signed ES256 by the current key, and their checks."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from rhip.core.errors import Unauthenticated
from rhip.security.identity.keys import ALG, KeyStore
from rhip.security.principal import Principal, Role
from rhip.security.scopes import Scope, parse_scopes, scope_string

TYPE = "at+jwt"
MAX_TOKEN_LENGTH = 16 * 1024  # characters: anything longer is not one of ours (nor a sane bearer token)
REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti"]


@dataclass(frozen=True)
class Grant:
    """Whom an access token is for and what it allows (its claims, typed)."""

    subject: str  # user:<username> | client:<client id>
    role: Role
    scopes: frozenset[Scope]
    institution: str | None = None
    organization: str | None = None
    department: str | None = None
    district: str | None = None
    patients: tuple[str, ...] = ()
    client_id: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class Issued:
    """A signed access token and what a token response says of it."""

    token: str
    jti: str
    expires_at: float
    lifetime: int
    claims: dict[str, Any]


def invalid(reason: str = "the access token is not valid") -> Unauthenticated:
    """The error of a refused bearer token (one message for every forgery: no oracle)."""
    return Unauthenticated(reason)


def check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """Refuse an expired token, one not valid yet, or one issued in the future (``leeway`` for clock skew)."""
    try:
        exp = float(claims["exp"])
        iat = float(claims.get("iat", now))
        nbf = float(claims.get("nbf", iat))
    except (KeyError, TypeError, ValueError):
        raise invalid() from None
    if now > exp + leeway:
        raise Unauthenticated("the access token has expired")
    if nbf > now + leeway or iat > now + leeway:
        raise invalid("the access token is not valid yet")


class AccessTokens:
    """Issues and verifies this platform's access tokens."""

    def __init__(
        self,
        keys: KeyStore,
        *,
        issuer: str,
        audiences: tuple[str, ...],
        leeway: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audiences = audiences
        self.leeway = leeway
        self.clock = clock

    def issue(self, grant: Grant, lifetime_seconds: int) -> Issued:
        """Sign an access token for ``grant`` that lives ``lifetime_seconds``."""
        signer = self.keys.signer()
        now = int(self.clock())
        jti = secrets.token_urlsafe(18)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.subject,
            "aud": self.audiences[0],
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_seconds,
            "jti": jti,
            "scope": scope_string(grant.scopes),
            "rhip_role": grant.role.value,
        }
        optional = {
            "client_id": grant.client_id,
            "rhip_inst": grant.institution,
            "rhip_org": grant.organization,
            "rhip_dept": grant.department,
            "rhip_district": grant.district,
            "sid": grant.session,
        }
        claims.update({k: v for k, v in optional.items() if v})
        if grant.patients:
            claims["rhip_patients"] = list(grant.patients)
        token = jwt.encode(claims, signer.private, algorithm=ALG, headers={"kid": signer.kid, "typ": TYPE})
        return Issued(token, jti, float(claims["exp"]), lifetime_seconds, claims)

    def verify(self, token: str, *, allow_expired: bool = False) -> tuple[dict[str, Any], str]:
        """The claims of a valid token of ours and the kid that signed it; raises Unauthenticated."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise invalid()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid() from None
        kid = header.get("kid")
        # Only ES256 under a kid of ours: alg=none and HS256-signed-with-our-public-key never get this far.
        if (
            header.get("alg") != ALG
            or not isinstance(kid, str)
            or str(header.get("typ", "")).lower()
            not in (
                TYPE,
                f"application/{TYPE}",
            )
        ):
            raise invalid()
        key = self.keys.public_key(kid)
        if key is None:
            raise invalid()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALG],
                audience=list(self.audiences),
                issuer=self.issuer,
                options={"require": REQUIRED, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise invalid() from None
        if not allow_expired:
            check_times(claims, self.clock(), self.leeway)
        return claims, kid


def principal_from_claims(claims: Mapping[str, Any], *, address: str | None = None) -> Principal:
    """The principal of a verified token of ours; raises Unauthenticated for claims no token of ours has."""
    try:
        role = Role(claims["rhip_role"])
        scopes = parse_scopes(str(claims.get("scope", "")))
    except Exception:  # unknown role, malformed scope: not a token this platform issued
        raise invalid() from None
    if role is Role.PLATFORM:
        raise invalid()
    patients = claims.get("rhip_patients") or ()
    if not isinstance(patients, list | tuple) or not all(isinstance(p, str) for p in patients):
        raise invalid()
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        scopes=scopes,
        institution=_text(claims, "rhip_inst"),
        organization=_text(claims, "rhip_org"),
        department=_text(claims, "rhip_dept"),
        district=_text(claims, "rhip_district"),
        patients=tuple(patients),
        client_id=_text(claims, "client_id"),
        token_id=_text(claims, "jti"),
        session=_text(claims, "sid"),
        address=address,
    )


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return str(value) if value is not None else None
