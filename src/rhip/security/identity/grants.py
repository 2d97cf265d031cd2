"""The token endpoint's grants: client_credentials (private_key_jwt), password (portal users), refresh_token.

Scopes: what was asked (default: what the client is registered for, or the user's role maximum), cut to the
role's maximum (``ROLE_SCOPES``) and to the client's registered scopes; nothing left is ``invalid_scope``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from rhip.core.errors import InvalidRequest
from rhip.security.identity.accounts import Accounts
from rhip.security.identity.assertions import ASSERTION_TYPE, ClientAssertions
from rhip.security.identity.auditing import LOGIN, SUCCESS, IdentityAudit, client_principal, user_principal
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.records import Client, User
from rhip.security.identity.roles import ROLE_SCOPES
from rhip.security.identity.sessions import Session, Sessions
from rhip.security.identity.signin import SignIn
from rhip.security.identity.tokens import AccessTokens, Grant, Issued
from rhip.security.principal import Principal, Role
from rhip.security.scopes import Scope, intersect, parse_scopes, scope_string

log = logging.getLogger("rhip.security.identity")
GRANT_TYPES = ("client_credentials", "password", "refresh_token")


def granted_scopes(
    requested: str | None, role: Role, client: Client | None, *, default: frozenset[Scope]
) -> frozenset[Scope]:
    """The scopes a token gets: asked ∩ role maximum ∩ client's registered scopes; raises invalid_scope."""
    try:
        asked = parse_scopes(requested) if requested else frozenset()
    except InvalidRequest as exc:
        raise OAuthError("invalid_scope", exc.message) from None
    out = intersect(asked or default, ROLE_SCOPES[role])
    if client is not None:
        out = intersect(out, client.scopes)
    if not out:
        raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this role and client")
    return out


def _one(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"the {name} parameter is required")
    return value


class Grants:
    """Handles token requests by grant type; each attempt becomes an audit entry (subtype ``login``)."""

    def __init__(
        self,
        *,
        accounts: Accounts,
        signin: SignIn,
        sessions: Sessions,
        assertions: ClientAssertions,
        tokens: AccessTokens,
        lifetime_seconds: int,
        audit: IdentityAudit | None = None,
    ) -> None:
        self.accounts = accounts
        self.signin = signin
        self.sessions = sessions
        self.assertions = assertions
        self.tokens = tokens
        self.lifetime = lifetime_seconds
        self.audit = audit or IdentityAudit()

    def token(
        self, form: Mapping[str, str], token_urls: Collection[str], *, address: str | None = None
    ) -> dict[str, Any]:
        """An OAuth token response for ``form`` (from ``address``); raises OAuthError."""
        grant_type = form.get("grant_type") or ""
        detail = {"grant": grant_type if grant_type in GRANT_TYPES else "other"}
        try:
            answer, who = self._token(grant_type, form, token_urls)
        except OAuthError as exc:
            self.audit.refused(exc.principal, address, LOGIN, exc.note or exc.description, **detail)
            raise
        self.audit.record(replace(who, address=address), subtype=LOGIN, outcome=SUCCESS, detail=detail)
        return answer

    def _token(
        self, grant_type: str, form: Mapping[str, str], token_urls: Collection[str]
    ) -> tuple[dict[str, Any], Principal]:
        if not grant_type:
            raise OAuthError("invalid_request", "the grant_type parameter is required")
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"grant_type is one of {', '.join(GRANT_TYPES)}")
        client, authenticated = self._client(form, token_urls)
        if grant_type == "client_credentials":
            if client is None or not authenticated:
                raise OAuthError(
                    "invalid_client", "client_credentials needs a private_key_jwt client assertion"
                )
            return self._client_credentials(form, client)
        if grant_type == "password":
            return self._password(form, client)
        return self._refresh(form, client)

    def _client(self, form: Mapping[str, str], token_urls: Collection[str]) -> tuple[Client | None, bool]:
        """The client of the request and whether it authenticated (a portal only names itself)."""
        assertion, kind = form.get("client_assertion"), form.get("client_assertion_type")
        if assertion or kind:
            if kind != ASSERTION_TYPE:
                raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}")
            signed = self.assertions.authenticate(
                _one(form, "client_assertion"), audiences=token_urls, client_id=form.get("client_id")
            )
            return signed, True
        client_id = form.get("client_id")
        if not client_id:
            return None, False
        named = self.accounts.get_client(client_id)
        if named is None or named.disabled:
            who = client_principal(named, None) if named is not None else None
            raise OAuthError("invalid_client", "unknown or disabled client", principal=who)
        if named.has_keys:
            raise OAuthError(
                "invalid_client",
                "this client authenticates with a private_key_jwt client assertion",
                principal=client_principal(named, None),
            )
        return named, False

    def _client_credentials(
        self, form: Mapping[str, str], client: Client
    ) -> tuple[dict[str, Any], Principal]:
        try:
            scopes = granted_scopes(form.get("scope"), client.role, client, default=client.scopes)
        except OAuthError as exc:
            exc.principal = client_principal(client, None)
            raise
        issued = self.tokens.issue(client_grant(client, scopes), self.lifetime)
        log.info("issued an access token to client %s (%s)", client.client_id, client.role.value)
        return _response(issued, scopes), client_principal(client, None, token_id=issued.jti)

    def _password(self, form: Mapping[str, str], client: Client | None) -> tuple[dict[str, Any], Principal]:
        username, password = _one(form, "username"), _one(form, "password")
        user = self.signin.check(username, password, form.get("totp"))
        client_id = client.client_id if client else None
        try:
            scopes = granted_scopes(form.get("scope"), user.role, client, default=ROLE_SCOPES[user.role])
        except OAuthError as exc:
            exc.principal = user_principal(user, None, client_id=client_id)
            raise
        refresh_token, session = self.sessions.start(user.username, client_id, scope_string(scopes))
        issued = self.tokens.issue(user_grant(user, scopes, client, session), self.lifetime)
        log.info("a %s signed in with a password", user.role.value)
        who = user_principal(user, None, client_id=client_id, token_id=issued.jti, session=session.family)
        return _response(issued, scopes, refresh_token=refresh_token, user=user), who

    def _refresh(self, form: Mapping[str, str], client: Client | None) -> tuple[dict[str, Any], Principal]:
        token = _one(form, "refresh_token")
        known = self.sessions.peek(token)
        if known is None:
            raise OAuthError("invalid_grant", "unknown refresh token")
        user = self.accounts.get_user(known.username)
        client_id = client.client_id if client else None
        who = None if user is None else user_principal(user, None, client_id=client_id, session=known.family)
        try:
            if user is None or user.disabled:
                self.sessions.end(known.family)
                raise OAuthError("invalid_grant", "the session has ended")
            original = parse_scopes(known.scope)
            # A refresh may narrow the session's scopes, never widen them; a changed role narrows them too.
            scopes = intersect(
                granted_scopes(form.get("scope"), user.role, client, default=original), original
            )
            if not scopes:
                raise OAuthError("invalid_scope", "a refresh cannot add scopes to the session")
            refresh_token, session = self.sessions.rotate(token, client_id)
        except OAuthError as exc:
            exc.principal = exc.principal or who
            raise
        issued = self.tokens.issue(user_grant(user, scopes, client, session), self.lifetime)
        who = user_principal(user, None, client_id=client_id, token_id=issued.jti, session=session.family)
        return _response(issued, scopes, refresh_token=refresh_token, user=user), who


def user_grant(
    user: User, scopes: frozenset[Scope], client: Client | None = None, session: Session | None = None
) -> Grant:
    """The claims of a user's access token."""
    return Grant(
        subject=user.subject,
        role=user.role,
        scopes=scopes,
        institution=user.institution,
        organization=user.organization,
        department=user.department,
        district=user.district,
        patients=user.patients,
        client_id=client.client_id if client else None,
        session=session.family if session else None,
    )


def client_grant(client: Client, scopes: frozenset[Scope]) -> Grant:
    """The claims of a client's access token."""
    return Grant(
        subject=client.subject,
        role=client.role,
        scopes=scopes,
        institution=client.institution,
        organization=client.organization,
        client_id=client.client_id,
    )


def _response(
    issued: Issued, scopes: frozenset[Scope], *, refresh_token: str | None = None, user: User | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.lifetime,
        "scope": scope_string(scopes),
    }
    if refresh_token is not None:
        out["refresh_token"] = refresh_token
    if user is not None and user.role is Role.RESIDENT and user.patients:
        out["patient"] = user.patients[0]  # SMART launch context: the resident's own record
    return out
