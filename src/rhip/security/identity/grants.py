"""The token endpoint's grants: client_credentials (private_key_jwt), password (portal users), refresh_token.

Scopes: what was asked (default: what the client is registered for, or the user's role maximum), cut to the
role's maximum (``ROLE_SCOPES``) and to the client's registered scopes; nothing left is ``invalid_scope``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rhip.core.errors import InvalidRequest
from rhip.security.identity.accounts import Accounts
from rhip.security.identity.assertions import ASSERTION_TYPE, ClientAssertions
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.records import Client, User
from rhip.security.identity.roles import ROLE_SCOPES
from rhip.security.identity.sessions import Session, Sessions
from rhip.security.identity.signin import SignIn
from rhip.security.identity.tokens import AccessTokens, Grant, Issued
from rhip.security.principal import Role
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
    """Handles token requests by grant type."""

    def __init__(
        self,
        *,
        accounts: Accounts,
        signin: SignIn,
        sessions: Sessions,
        assertions: ClientAssertions,
        tokens: AccessTokens,
        lifetime_seconds: int,
    ) -> None:
        self.accounts = accounts
        self.signin = signin
        self.sessions = sessions
        self.assertions = assertions
        self.tokens = tokens
        self.lifetime = lifetime_seconds

    def token(self, form: Mapping[str, str], token_urls: set[str]) -> dict[str, Any]:
        """An OAuth token response for ``form``; raises OAuthError."""
        grant_type = _one(form, "grant_type")
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

    def _client(self, form: Mapping[str, str], token_urls: set[str]) -> tuple[Client | None, bool]:
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
            raise OAuthError("invalid_client", "unknown or disabled client")
        if named.has_keys:
            raise OAuthError(
                "invalid_client", "this client authenticates with a private_key_jwt client assertion"
            )
        return named, False

    def _client_credentials(self, form: Mapping[str, str], client: Client) -> dict[str, Any]:
        scopes = granted_scopes(form.get("scope"), client.role, client, default=client.scopes)
        issued = self.tokens.issue(client_grant(client, scopes), self.lifetime)
        log.info("issued an access token to client %s (%s)", client.client_id, client.role.value)
        return _response(issued, scopes)

    def _password(self, form: Mapping[str, str], client: Client | None) -> dict[str, Any]:
        username, password = _one(form, "username"), _one(form, "password")
        user = self.signin.check(username, password, form.get("totp"))
        scopes = granted_scopes(form.get("scope"), user.role, client, default=ROLE_SCOPES[user.role])
        refresh_token, session = self.sessions.start(
            user.username, client.client_id if client else None, scope_string(scopes)
        )
        issued = self.tokens.issue(user_grant(user, scopes, client, session), self.lifetime)
        log.info("a %s signed in with a password", user.role.value)
        return _response(issued, scopes, refresh_token=refresh_token, user=user)

    def _refresh(self, form: Mapping[str, str], client: Client | None) -> dict[str, Any]:
        token = _one(form, "refresh_token")
        known = self.sessions.peek(token)
        if known is None:
            raise OAuthError("invalid_grant", "unknown refresh token")
        user = self.accounts.get_user(known.username)
        if user is None or user.disabled:
            self.sessions.end(known.family)
            raise OAuthError("invalid_grant", "the session has ended")
        original = parse_scopes(known.scope)
        # A refresh may narrow the session's scopes, never widen them; a changed role narrows them too.
        scopes = intersect(granted_scopes(form.get("scope"), user.role, client, default=original), original)
        if not scopes:
            raise OAuthError("invalid_scope", "a refresh cannot add scopes to the session")
        refresh_token, session = self.sessions.rotate(token, client.client_id if client else None)
        issued = self.tokens.issue(user_grant(user, scopes, client, session), self.lifetime)
        return _response(issued, scopes, refresh_token=refresh_token, user=user)


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
