"""Refresh tokens: rotation, reuse detection that ends the session, narrowing, expiry, revocation."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from rhip.core.errors import Unauthenticated
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.service import IdentityService
from rhip.security.scopes import parse_scopes

from .support import PASSWORD, Clock


@pytest.fixture
def session(identity: IdentityService) -> dict[str, str]:
    identity.accounts.add_user("nurse", PASSWORD, "clinician", institution="H002")
    form = {"grant_type": "password", "username": "nurse", "password": PASSWORD}
    return identity.token(form)


def _refresh(identity: IdentityService, token: str, **extra: str) -> dict[str, str]:
    return identity.token({"grant_type": "refresh_token", "refresh_token": token, **extra})


def _refused(identity: IdentityService, token: str, error: str = "invalid_grant", **extra: str) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        _refresh(identity, token, **extra)
    assert caught.value.error == error
    return caught.value


def test_rotation(identity: IdentityService, session: dict[str, str]) -> None:
    second = _refresh(identity, session["refresh_token"])
    assert second["refresh_token"] != session["refresh_token"]
    assert second["scope"] == "user/*.cruds"
    first_principal = identity.authenticate(session["access_token"])
    second_principal = identity.authenticate(second["access_token"])
    assert first_principal.session == second_principal.session  # one session, one family
    third = _refresh(identity, second["refresh_token"])
    assert identity.authenticate(third["access_token"]).subject == "user:nurse"


def test_reuse_of_a_rotated_token_revokes_the_whole_session(
    identity: IdentityService, session: dict[str, str]
) -> None:
    second = _refresh(identity, session["refresh_token"])
    refused = _refused(identity, session["refresh_token"])  # the stolen copy
    assert "used before" in refused.description
    # The legitimate holder's newer token is dead too, and so are the session's access tokens.
    _refused(identity, second["refresh_token"])
    for access in (session["access_token"], second["access_token"]):
        with pytest.raises(Unauthenticated, match="revoked"):
            identity.authenticate(access)
    # A new sign-in opens a new session.
    form = {"grant_type": "password", "username": "nurse", "password": PASSWORD}
    fresh = identity.token(form)
    assert identity.authenticate(fresh["access_token"]).subject == "user:nurse"


def test_refresh_tokens_are_stored_as_digests(identity: IdentityService, session: dict[str, str]) -> None:
    with identity.db.read() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT token_hash FROM security_refresh_token"))]
    assert stored and session["refresh_token"] not in stored
    assert all(len(s) == 64 for s in stored)


def test_narrowing_but_never_widening(identity: IdentityService, session: dict[str, str]) -> None:
    narrow = _refresh(identity, session["refresh_token"], scope="user/Patient.rs")
    assert narrow["scope"] == "user/Patient.rs"
    assert identity.authenticate(narrow["access_token"]).scopes == parse_scopes("user/Patient.rs")
    # The session keeps its original scopes: a later refresh without a scope gets them back.
    again = _refresh(identity, narrow["refresh_token"])
    assert again["scope"] == "user/*.cruds"
    _refused(identity, again["refresh_token"], "invalid_scope", scope="system/*.cruds")


def test_the_session_ends_when_its_hours_are_up(
    identity: IdentityService, session: dict[str, str], clock: Clock
) -> None:
    clock.advance(3600)
    second = _refresh(identity, session["refresh_token"])
    clock.advance(identity.config.refresh_token_hours * 3600)
    assert "expired" in _refused(identity, second["refresh_token"]).description


def test_disabled_user_cannot_refresh(identity: IdentityService, session: dict[str, str]) -> None:
    identity.accounts.set_user_disabled("nurse", True)
    _refused(identity, session["refresh_token"])
    identity.accounts.set_user_disabled("nurse", False)
    _refused(identity, session["refresh_token"])  # disabling ended the session


def test_revoking_the_refresh_token_logs_out(identity: IdentityService, session: dict[str, str]) -> None:
    identity.revoke({"token": session["refresh_token"], "token_type_hint": "refresh_token"})
    _refused(identity, session["refresh_token"])
    with pytest.raises(Unauthenticated, match="revoked"):
        identity.authenticate(session["access_token"])


def test_unknown_and_malformed_refresh_tokens(identity: IdentityService, session: dict[str, str]) -> None:
    _refused(identity, "rt.not-a-token")
    _refused(identity, session["access_token"])
    with pytest.raises(OAuthError) as caught:
        identity.token({"grant_type": "refresh_token"})
    assert caught.value.error == "invalid_request"


def test_refresh_bound_to_its_client(identity: IdentityService) -> None:
    identity.accounts.add_client("portal", scopes="patient/*.rs")
    identity.accounts.add_client("other-portal", scopes="patient/*.rs")
    identity.accounts.add_user("res", PASSWORD, "resident", patients=["p9"])
    form = {"grant_type": "password", "username": "res", "password": PASSWORD, "client_id": "portal"}
    answer = identity.token(form)
    assert (
        "another client" in _refused(identity, answer["refresh_token"], client_id="other-portal").description
    )
    assert "another client" in _refused(identity, answer["refresh_token"]).description
    assert _refresh(identity, answer["refresh_token"], client_id="portal")["patient"] == "p9"
