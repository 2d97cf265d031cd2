"""The identity service: the OAuth 2.0 token endpoint, revocation, the JWKS, SMART discovery, and bearer-token
authentication for every door (see the package docstring for what lives where)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import jwt

from rhip.core.errors import InvalidRequest, ResourceNotFound, RhipError, Unauthenticated
from rhip.db.engine import Database
from rhip.security.identity import repository as sql
from rhip.security.identity.accounts import FINGERPRINT, Accounts
from rhip.security.identity.assertions import ALGORITHMS as ASSERTION_ALGORITHMS
from rhip.security.identity.assertions import ClientAssertions
from rhip.security.identity.auditing import (
    LOGOUT,
    REFUSED,
    SUCCESS,
    AuditHook,
    IdentityAudit,
    anonymous,
    user_principal,
)
from rhip.security.identity.authn import Authenticator, Refreshing, TokenRefused, Verified
from rhip.security.identity.config import IdentityConfig
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.grants import GRANT_TYPES, Grants, client_grant, granted_scopes, user_grant
from rhip.security.identity.keys import KeyStore
from rhip.security.identity.oidc import ExternalIssuer
from rhip.security.identity.passwords import Passwords
from rhip.security.identity.roles import ROLE_SCOPES
from rhip.security.identity.sealing import Sealer
from rhip.security.identity.sessions import PREFIX, Sessions
from rhip.security.identity.signin import SignIn
from rhip.security.identity.tokens import MAX_TOKEN_LENGTH, AccessTokens, principal_from_claims
from rhip.security.principal import Principal, Role
from rhip.security.scopes import intersect, scope_string

log = logging.getLogger("rhip.security.identity")
CERTIFICATE_CACHE_SIZE = 10_000
TOKEN_PATH = "/auth/token"  # noqa: S105 -- a URL path, not a secret
PRUNE_INTERVAL = 600.0  # seconds between deletions of expired revocations, assertions and refresh tokens


def token_urls(config: IdentityConfig) -> frozenset[str]:
    """The token endpoint URLs client assertions may name as ``aud``: the configured (or default) one and
    one under each audience's root (``https://host/fhir`` → ``https://host/auth/token``): the server's own
    names, from its settings; never from a request's Host header (an assertion made for another server
    must not be replayable here)."""
    roots = (a.rstrip("/").removesuffix("/fhir") for a in config.audiences)
    return frozenset({config.default_token_url, *(f"{root}{TOKEN_PATH}" for root in roots)})


class IdentityService:
    """Who is asking: issues tokens (client credentials, password, refresh) and turns bearer tokens into
    principals. ``accounts`` administers users and clients (the ``rhip users`` / ``rhip clients`` commands).

    ``audit`` (``rhip.security.audit.trail.AuditTrail``) records every sign-in, refresh, revocation, refused
    bearer token and administrative change (see ``auditing``); without one nothing is recorded.
    """

    def __init__(
        self,
        db: Database,
        config: IdentityConfig,
        *,
        clock: Callable[[], float] = time.time,
        audit: AuditHook | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.audit = IdentityAudit(audit)
        self.token_urls = token_urls(config)
        leeway = config.leeway_seconds
        longest = max(config.access_token_minutes, config.max_issue_minutes) * 60 + leeway
        passwords = Passwords(config.passwords)
        sealer = Sealer(config.keys_dir)
        self.keys = KeyStore(
            db, config.keys_dir, retention_seconds=longest, clock=clock, ttl=config.account_ttl_seconds
        )
        self.tokens = AccessTokens(
            self.keys, issuer=config.issuer, audiences=config.audiences, leeway=leeway, clock=clock
        )
        self.accounts = Accounts(
            db, passwords, sealer, clock=clock, session_revocation_us=longest * 1_000_000, audit=self.audit
        )
        self.sessions = Sessions(
            db, hours=config.refresh_token_hours, revoke_for_us=longest * 1_000_000, clock=clock
        )
        self.oidc = (
            ExternalIssuer(config.oidc, audiences=config.audiences, leeway=leeway, clock=clock)
            if config.oidc
            else None
        )
        self._revoked = Refreshing(self._load_revoked, config.revocation_ttl_seconds)
        self._disabled = Refreshing(self._load_disabled, config.account_ttl_seconds)
        self.accounts.on_change = self._disabled.invalidate
        self.authenticator = Authenticator(
            self._verify,
            revoked=self._revoked,
            disabled=self._disabled,
            is_published=self.keys.is_published,
            leeway=leeway,
            size=config.token_cache_size,
            clock=clock,
        )
        self.grants = Grants(
            accounts=self.accounts,
            signin=SignIn(
                db,
                passwords,
                sealer,
                attempts=config.lockout_attempts,
                lock_minutes=config.lockout_minutes,
                clock=clock,
            ),
            sessions=self.sessions,
            assertions=ClientAssertions(
                db, max_minutes=config.client_assertion_max_minutes, leeway=leeway, clock=clock
            ),
            tokens=self.tokens,
            lifetime_seconds=config.access_token_minutes * 60,
            audit=self.audit,
        )
        self._certificates: dict[str, tuple[float, Principal | None]] = {}
        self._pruned_at = float("-inf")
        self._prune_lock = threading.Lock()

    # --- authentication (every door, every request) ----------------------------------------------------

    def authenticate(self, bearer_token: str, *, address: str | None = None) -> Principal:
        """The principal of a bearer token; raises Unauthenticated (cached: microseconds once verified).

        A refused token is audited (subtype ``authenticate``): as its account's when its signature
        verified (expired, revoked, disabled), else as ``anonymous`` (forged, foreign, malformed).
        """
        try:
            return self.authenticator.authenticate(bearer_token, address=address)
        except Unauthenticated as exc:
            known = exc.principal if isinstance(exc, TokenRefused) else None
            self.audit.token_refused(known, address, exc.message)
            raise

    def peek(self, bearer_token: str) -> Principal | None:
        """The principal of a bearer token already verified and cached, else None; no I/O, no signature
        check (the rate limiter's key, on the event loop)."""
        return self.authenticator.peek(bearer_token)

    def refuse_anonymous(self, address: str | None, reason: str) -> None:
        """Audit a request refused for want of credentials (no bearer token, no registered certificate)."""
        self.audit.token_refused(None, address, reason)

    def _verify(self, token: str) -> Verified:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("the access token is not valid")
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise Unauthenticated("the access token is not valid") from None
        if issuer == self.config.issuer:
            claims, kid = self.tokens.verify(token)
            principal = principal_from_claims(claims)
            expires, found_kid = float(claims["exp"]), kid
        elif self.oidc is not None and issuer == self.oidc.issuer:
            principal, expires = self.oidc.verify(token)
            found_kid = None
        else:
            raise Unauthenticated("the access token is from an issuer this platform does not trust")
        revocation = [principal.token_id or ""]
        if principal.session:
            revocation.append(f"sid:{principal.session}")
        subjects = [principal.subject]
        if principal.client_id:
            subjects.append(f"client:{principal.client_id}")
        return Verified(principal, expires, found_kid, tuple(revocation), tuple(subjects))

    def _load_revoked(self) -> set[str]:
        with self.db.read() as conn:
            return sql.select_revoked(conn, int(self.clock() * 1_000_000))

    def _load_disabled(self) -> set[str]:
        with self.db.read() as conn:
            return sql.disabled_subjects(conn)

    def principal_for_certificate(self, sha256_fingerprint_hex: str) -> Principal | None:
        """The principal of a registered client's TLS certificate (MLLP, HTTPS), or None."""
        fingerprint = sha256_fingerprint_hex.strip().replace(":", "").lower()
        if not FINGERPRINT.match(fingerprint):
            return None
        now = time.monotonic()
        cached = self._certificates.get(fingerprint)
        if cached is not None and now - cached[0] <= self.config.account_ttl_seconds:
            return cached[1]
        client = self.accounts.client_by_certificate(fingerprint)
        principal = None
        if client is not None and not client.disabled:
            principal = Principal(
                subject=client.subject,
                role=client.role,
                scopes=intersect(client.scopes, ROLE_SCOPES[client.role]),
                institution=client.institution,
                organization=client.organization,
                client_id=client.client_id,
            )
        if len(self._certificates) >= CERTIFICATE_CACHE_SIZE:
            self._certificates.clear()  # only CA-signed certificates get here: a rare reset is enough
        self._certificates[fingerprint] = (now, principal)
        return principal

    # --- the OAuth endpoints ---------------------------------------------------------------------------

    def token(self, form: Mapping[str, str], *, address: str | None = None) -> dict[str, Any]:
        """The token response for a token request (RFC 6749 §5.1); raises OAuthError (§5.2).

        Client assertions must name one of ``token_urls`` (configured, never taken from the request) as
        their ``aud``. Password grants of users with a second factor send its current code as ``totp``.
        """
        self._maybe_prune()
        return self.grants.token(form, self.token_urls, address=address)

    def revoke(self, form: Mapping[str, str], *, address: str | None = None) -> None:
        """Revoke an access or refresh token (RFC 7009); unknown and invalid tokens are ignored, as it asks
        (and audited as refused sign-outs)."""
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "the token parameter is required")
        if token.startswith(PREFIX):
            session = self.sessions.revoke(token)
            if session is None:
                self.audit.refused(None, address, LOGOUT, "unknown refresh token")
                return
            self._revoked.invalidate()
            user = self.accounts.get_user(session.username)
            who = (
                anonymous(address) if user is None else user_principal(user, address, session=session.family)
            )
            self.audit.record(who, subtype=LOGOUT, outcome=SUCCESS, detail={"token": "refresh_token"})
            return
        try:
            claims, _ = self.tokens.verify(token, allow_expired=True)
        except Unauthenticated:
            # Not ours (or forged): nothing to revoke, and the answer must not say so.
            self.audit.refused(None, address, LOGOUT, "not an access token of this platform")
            return
        now = self.clock()
        expires = float(claims["exp"]) + self.config.leeway_seconds
        if expires > now:
            with self.db.write() as conn:
                jti = str(claims["jti"])
                sql.insert_revoked(conn, jti, now_us=int(now * 1e6), expires_us=int(expires * 1e6))
            self._revoked.invalidate()
        who = replace(principal_from_claims(claims), address=address)
        self.audit.record(who, subtype=LOGOUT, outcome=SUCCESS, detail={"token": "access_token"})

    def jwks(self) -> dict[str, Any]:
        """The public signing keys (``/.well-known/jwks.json``); creates the first key when there is none."""
        if not self.keys.jwks()["keys"]:
            self.keys.signer()
        return self.keys.jwks()

    def known_root(self, candidate: str | None = None) -> str:
        """``candidate`` (a scheme and host a request came in on) when it is one of the server's own
        configured roots, else the root of the default token URL: discovery never echoes a Host header."""
        roots = {url.removesuffix(TOKEN_PATH) for url in self.token_urls}
        root = (candidate or "").rstrip("/")
        return root if root in roots else self.config.default_token_url.removesuffix(TOKEN_PATH)

    def smart_configuration(self, base_url: str) -> dict[str, Any]:
        """SMART discovery (``/.well-known/smart-configuration``) for a server reached at ``base_url``.

        Only what exists: the token endpoint with ``private_key_jwt`` client authentication (SMART Backend
        Services) and password and refresh grants, v2 (and v1) scopes; no authorization endpoint, so no
        response types and no launch capabilities.
        """
        base = base_url.rstrip("/")
        scopes = sorted({str(s) for role in Role if role is not Role.PLATFORM for s in ROLE_SCOPES[role]})
        return {
            "issuer": self.config.issuer,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "token_endpoint": f"{base}/auth/token",
            "revocation_endpoint": f"{base}/auth/revoke",
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "scopes_supported": [*scopes, "offline_access"],
            "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
        }

    # --- administration (the CLI) ----------------------------------------------------------------------

    def rotate_key(self, *, withdraw_old: bool = False) -> str:
        """Sign with a new key from now; the kid. ``withdraw_old``: the old keys' tokens stop working at once."""
        change = "rotate-key-withdraw-old" if withdraw_old else "rotate-key"
        try:
            kid = self.keys.rotate(withdraw_old=withdraw_old)
        except Exception as exc:
            self.audit.admin(change, "signing-key", outcome=REFUSED, reason=type(exc).__name__)
            raise
        if withdraw_old:
            self.authenticator.forget()
        self.audit.admin(change, f"signing-key:{kid}")
        return kid

    def issue_token(
        self,
        *,
        username: str | None = None,
        client_id: str | None = None,
        scopes: str | None = None,
        minutes: int | None = None,
    ) -> str:
        """An access token for a user or client without its credentials (an operator's tool for scripts)."""
        target = f"user:{username}" if username is not None else f"client:{client_id}"
        try:
            token, issued_to = self._issue_token(username, client_id, scopes, minutes)
        except RhipError as exc:
            self.audit.admin("issue-token", target[:140], outcome=REFUSED, action="E", reason=exc.message)
            raise
        self.audit.admin(
            "issue-token",
            issued_to.subject,
            action="E",
            token=issued_to.token_id or "",
            scope=scope_string(issued_to.scopes),
            minutes=str(minutes or self.config.access_token_minutes),
        )
        return token

    def _issue_token(
        self, username: str | None, client_id: str | None, scopes: str | None, minutes: int | None
    ) -> tuple[str, Principal]:
        minutes = minutes or self.config.access_token_minutes
        if not 1 <= minutes <= self.config.max_issue_minutes:
            raise InvalidRequest(f"a token lives 1 to {self.config.max_issue_minutes} minutes")
        if (username is None) == (client_id is None):
            raise InvalidRequest("issue a token for a user or for a client")
        try:
            if username is not None:
                user = self.accounts.get_user(username)
                if user is None or user.disabled:
                    raise ResourceNotFound(f"no enabled user {username!r}")
                granted = granted_scopes(scopes, user.role, None, default=ROLE_SCOPES[user.role])
                grant = user_grant(user, granted)
            else:
                client = self.accounts.get_client(str(client_id))
                if client is None or client.disabled:
                    raise ResourceNotFound(f"no enabled client {client_id!r}")
                granted = granted_scopes(scopes, client.role, client, default=client.scopes)
                grant = client_grant(client, granted)
        except OAuthError as exc:
            raise InvalidRequest(exc.description) from None
        log.info(
            "an operator issued a %s token for %d minutes (scopes %s)",
            grant.role.value,
            minutes,
            scope_string(granted),
        )
        issued = self.tokens.issue(grant, minutes * 60)
        return issued.token, principal_from_claims(issued.claims)

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_INTERVAL or not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._pruned_at = now
            with self.db.write() as conn:
                sql.prune(conn, int(self.clock() * 1_000_000))
        finally:
            self._prune_lock.release()
