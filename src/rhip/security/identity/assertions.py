"""Client authentication by ``private_key_jwt`` (SMART Backend Services, RFC 7523).

A client proves who it is with a JWT it signed with a key registered for it (an inline JWKS or a JWKS URL):
``iss`` = ``sub`` = its client id, ``aud`` = the token endpoint URL, ``exp`` at most
``client_assertion_max_minutes`` ahead, a ``jti`` it never used before (remembered until ``exp``), signed
RS384, ES384, RS256 or ES256.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from rhip.db.engine import Database
from rhip.security.identity import repository as sql
from rhip.security.identity.auditing import client_principal
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.jwksource import JwksSource
from rhip.security.identity.records import Client, client_from_row

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
MAX_ASSERTION_LENGTH = 16 * 1024


def _refuse(description: str, client: Client | None = None) -> OAuthError:
    # The client, when the assertion names a registered one, is the audit entry's subject.
    who = client_principal(client, None) if client is not None else None
    return OAuthError("invalid_client", description, principal=who)


class ClientAssertions:
    """Verifies client assertions against each client's registered keys (cached per client)."""

    def __init__(
        self,
        db: Database,
        *,
        max_minutes: int,
        leeway: float,
        clock: Callable[[], float] = time.time,
        jwks_ttl: float = 300.0,
    ) -> None:
        self.db = db
        self.max_seconds = max_minutes * 60
        self.leeway = leeway
        self.clock = clock
        self.jwks_ttl = jwks_ttl
        self._sources: dict[str, tuple[tuple[str | None, str | None], JwksSource]] = {}
        self._lock = threading.Lock()

    def _source(self, client: Client) -> JwksSource:
        registered = (client.jwks, client.jwks_url)
        with self._lock:
            cached = self._sources.get(client.client_id)
            if cached is not None and cached[0] == registered:
                return cached[1]
            if client.jwks is not None:
                source = JwksSource(inline=client.jwks)
            else:
                source = JwksSource(location=client.jwks_url, ttl=self.jwks_ttl)
            self._sources[client.client_id] = (registered, source)
            return source

    def authenticate(
        self, assertion: str, *, audiences: Iterable[str], client_id: str | None = None
    ) -> Client:
        """The client that signed ``assertion``; raises OAuthError(invalid_client)."""
        if len(assertion) > MAX_ASSERTION_LENGTH or assertion.count(".") != 2:
            raise _refuse("the client assertion is not a signed JWT")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _refuse("the client assertion is not a signed JWT") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _refuse(f"client assertions are signed with one of {', '.join(ALGORITHMS)}")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or unverified.get("sub") != issuer:
            raise _refuse("a client assertion's iss and sub are both the client id")
        if client_id and client_id != issuer:
            raise _refuse("client_id differs from the client assertion's issuer")
        with self.db.read() as conn:
            row = sql.select_client(conn, issuer)
        client = None if row is None else client_from_row(row._mapping)
        if client is None or client.disabled or not client.has_keys:
            raise _refuse("unknown or disabled client, or a client without registered keys", client)
        kid = header.get("kid")
        key = self._source(client).key(kid if isinstance(kid, str) else None, alg)
        if key is None:
            raise _refuse("no registered key of the client matches the assertion's kid and alg", client)
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=issuer,
                options={
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise _refuse("the client assertion's aud is not this token endpoint", client) from None
        except jwt.PyJWTError:
            raise _refuse("the client assertion's signature or claims are not valid", client) from None
        exp = self._check_times(claims, client)
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 128:
            raise _refuse("the client assertion's jti is missing or longer than 128 characters", client)
        with self.db.write() as conn:
            fresh = sql.claim_assertion(conn, issuer, jti, int((exp + self.leeway) * 1_000_000))
        if not fresh:
            raise _refuse("the client assertion was used before (its jti is single-use)", client)
        return client

    def _check_times(self, claims: dict[str, Any], client: Client) -> float:
        now = self.clock()
        try:
            exp = float(claims["exp"])
            iat = float(claims.get("iat", now))
            nbf = float(claims.get("nbf", now))
        except (TypeError, ValueError):
            raise _refuse("the client assertion's exp, iat or nbf is not a number", client) from None
        if exp + self.leeway < now:
            raise _refuse("the client assertion has expired", client)
        if exp > now + self.max_seconds + self.leeway:
            raise _refuse(
                f"a client assertion expires at most {self.max_seconds // 60} minutes ahead", client
            )
        if iat > now + self.leeway or nbf > now + self.leeway:
            raise _refuse("the client assertion is not valid yet", client)
        return exp
