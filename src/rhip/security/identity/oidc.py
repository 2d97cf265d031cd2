"""Trust in an external OpenID provider: a commission's own sign-on issues the tokens, this platform checks them.

Its tokens are verified with its JWKS (asymmetric algorithms only), its issuer, an audience (the configured
one, else the platform's FHIR base URLs) and their lifetimes. The platform role and institution come from
configured claims; the other ``rhip_*`` claims (organization, department, district, patients) are read when
present. Scopes: the token's ``scope`` (or ``scp``) cut to the role's maximum, else the role's maximum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from rhip.core.errors import Unauthenticated
from rhip.security.identity.config import OidcConfig
from rhip.security.identity.jwksource import JwksSource, check_location
from rhip.security.identity.roles import ROLE_SCOPES, USER_ROLES
from rhip.security.identity.tokens import MAX_TOKEN_LENGTH, check_times, invalid
from rhip.security.principal import Principal, Role
from rhip.security.scopes import Scope, intersect, parse_scopes

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384")


def _role(value: Any) -> Role | None:
    for item in value if isinstance(value, list) else [value]:
        try:
            role = Role(str(item))
        except ValueError:
            continue
        if role in USER_ROLES:
            return role
    return None


def _scopes(claims: Mapping[str, Any], role: Role) -> frozenset[Scope]:
    raw = claims.get("scope", claims.get("scp"))
    if raw is None:
        return ROLE_SCOPES[role]
    try:
        asked = parse_scopes(raw if isinstance(raw, str) else [str(s) for s in raw])
    except Exception:  # a fine-grained or malformed scope: grant nothing rather than guess
        return frozenset()
    return intersect(asked, ROLE_SCOPES[role])


def _text(claims: Mapping[str, Any], name: str, limit: int = 64) -> str | None:
    value = claims.get(name)
    return str(value)[:limit] if isinstance(value, str | int) and str(value) else None


class ExternalIssuer:
    """Verifies tokens of one external OpenID provider and maps them to principals."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        audiences: tuple[str, ...],
        leeway: float,
        clock: Callable[[], float] = time.time,
        source: JwksSource | None = None,
    ) -> None:
        self.config = config
        self.issuer = config.issuer
        self.audiences = [config.audience] if config.audience else list(audiences)
        self.leeway = leeway
        self.clock = clock
        if source is None:
            check_location(config.jwks_url)  # a typo fails at start, not at the first sign-in
            source = JwksSource(location=config.jwks_url)
        self.source = source

    def verify(self, token: str, *, address: str | None = None) -> tuple[Principal, float]:
        """The principal of a valid token of this issuer and when it expires; raises Unauthenticated."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise invalid()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid() from None
        alg = header.get("alg")
        kid = header.get("kid")
        if alg not in ALGORITHMS:
            raise invalid()
        key = self.source.key(kid if isinstance(kid, str) else None, alg)
        if key is None:
            raise invalid()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audiences,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iat", "iss", "sub", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise invalid() from None
        check_times(claims, self.clock(), self.leeway)
        role = _role(claims.get(self.config.role_claim))
        if role is None:
            raise Unauthenticated("the token carries no platform role this platform accepts")
        patients = claims.get("rhip_patients") or []
        if not isinstance(patients, list):
            patients = []
        principal = Principal(
            subject=f"user:oidc:{str(claims['sub'])[:128]}",
            role=role,
            scopes=_scopes(claims, role),
            institution=_text(claims, self.config.institution_claim),
            organization=_text(claims, "rhip_org"),
            department=_text(claims, "rhip_dept"),
            district=_text(claims, "rhip_district", 12),
            patients=tuple(str(p) for p in patients if isinstance(p, str))[:64],
            client_id=_text(claims, "azp", 128) or _text(claims, "client_id", 128),
            token_id=_text(claims, "jti", 128),
            session=_text(claims, "sid", 128),
            address=address,
        )
        return principal, float(claims["exp"])
