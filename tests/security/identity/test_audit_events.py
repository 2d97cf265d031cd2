"""Identity events reach the audit trail: sign-ins, refreshes, sign-outs, refused tokens, administration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from rhip.core.errors import InvalidRequest, Unauthenticated
from rhip.db.engine import Database
from rhip.security.audit.balp import audit_entry
from rhip.security.context import acting_as
from rhip.security.identity import totp
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.service import IdentityService
from rhip.security.principal import Principal, Role, platform_principal

from .support import PASSWORD, ClientKey, Clock, identity_config

ADDRESS = "10.7.7.7"


@dataclass
class Event:
    """One recorded call of ``accessed``."""

    principal: Principal
    action: str
    subtype: str
    outcome: str
    detail: Mapping[str, str]


class Trail:
    """An AuditTrail stand-in that keeps what it is given (and builds each BALP entry, as the real one)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def accessed(
        self,
        principal: Principal,
        *,
        action: str,
        subtype: str,
        resources: Sequence[tuple[str, str, int | None]],
        patients: Sequence[str],
        outcome: str = "0",
        query: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        assert resources == () and patients == () and query is None
        audit_entry(
            principal, id="e", recorded_us=1, action=action, subtype=subtype, outcome=outcome, detail=detail
        )
        self.events.append(Event(principal, action, subtype, outcome, dict(detail or {})))

    def take(self) -> list[Event]:
        """The events so far, forgetting them."""
        events, self.events = self.events, []
        return events


@pytest.fixture
def trail() -> Trail:
    return Trail()


@pytest.fixture
def audited(db: Database, clock: Clock, tmp_path: Path, trail: Trail) -> IdentityService:
    return IdentityService(db, identity_config(tmp_path / "keys"), clock=clock, audit=trail)


def _password(username: str, password: str = PASSWORD, **extra: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password, **extra}


def _secrets_absent(events: list[Event], *secrets: str) -> None:
    text = repr(events)
    for secret in secrets:
        assert secret not in text


def test_password_sign_ins(audited: IdentityService, trail: Trail) -> None:
    audited.accounts.add_user("dr-li", PASSWORD, "clinician", institution="H001")
    trail.take()
    answer = audited.token(_password("dr-li"), address=ADDRESS)
    [ok] = trail.take()
    assert (ok.subtype, ok.outcome, ok.action) == ("login", "0", "E")
    assert ok.principal.subject == "user:dr-li" and ok.principal.role is Role.CLINICIAN
    assert ok.principal.address == ADDRESS and ok.principal.institution == "H001"
    assert ok.principal.token_id and ok.principal.session and ok.detail["grant"] == "password"
    with pytest.raises(OAuthError):
        audited.token(_password("dr-li", "wrong password"), address=ADDRESS)
    with pytest.raises(OAuthError):
        audited.token(_password("no-such-user", "typed-a-password-here"), address=ADDRESS)
    wrong, unknown = trail.take()
    assert (wrong.principal.subject, wrong.outcome, wrong.detail["reason"]) == (
        "user:dr-li",
        "4",
        "wrong password",
    )
    # An unknown account is anonymous: what was typed as a username may be a password.
    assert unknown.principal.subject == "anonymous" and unknown.principal.address == ADDRESS
    assert unknown.outcome == "4" and unknown.principal.role is Role.RESIDENT and not unknown.principal.scopes
    _secrets_absent(
        [ok, wrong, unknown], PASSWORD, "wrong password!", "typed-a-password-here", answer["access_token"]
    )
    assert "no-such-user" not in repr(unknown)


def test_lock_out_and_totp_are_audited(audited: IdentityService, trail: Trail, clock: Clock) -> None:
    uri = audited.accounts.add_user("res", PASSWORD, "resident", patients=["p1"], with_totp=True)
    assert uri is not None
    secret = uri.split("secret=")[1].split("&")[0]
    trail.take()
    with pytest.raises(OAuthError):
        audited.token(_password("res"))  # the right password, no code
    [missing] = trail.take()
    assert missing.detail["reason"] == "no one-time code" and missing.principal.subject == "user:res"
    for _ in range(4):
        with pytest.raises(OAuthError):
            audited.token(
                _password("res", totp="000000" if totp.code_at(secret, clock()) != "000000" else "1")
            )
    assert trail.take()[-1].detail["reason"].endswith("the account is locked now")
    code = totp.code_at(secret, clock())
    with pytest.raises(OAuthError):
        audited.token(_password("res", totp=code))
    [locked] = trail.take()
    assert locked.detail["reason"] == "locked account" and locked.outcome == "4"
    _secrets_absent([missing, locked], PASSWORD, code, secret)


def test_client_credentials(audited: IdentityService, trail: Trail, clock: Clock) -> None:
    key = ClientKey("ES256")
    audited.accounts.add_client(
        "his-1", scopes="system/*.rs", institution="H001", jwks=orjson.dumps(key.jwks()).decode()
    )
    trail.take()
    form = key.form("his-1", clock())
    audited.token(form, address=ADDRESS)
    with pytest.raises(OAuthError):
        audited.token(form, address=ADDRESS)  # the same jti again
    with pytest.raises(OAuthError):
        audited.token(key.form("his-1", clock(), aud="https://elsewhere/auth/token"))
    with pytest.raises(OAuthError):
        audited.token(key.form("stranger", clock()))
    ok, replay, elsewhere, stranger = trail.take()
    assert ok.principal.subject == "client:his-1" and ok.outcome == "0" and ok.principal.token_id
    assert ok.principal.role is Role.SYSTEM and ok.detail["grant"] == "client_credentials"
    assert (
        replay.principal.subject == "client:his-1"
        and replay.outcome == "4"
        and "jti" in replay.detail["reason"]
    )
    assert elsewhere.principal.subject == "client:his-1" and "aud" in elsewhere.detail["reason"]
    assert stranger.principal.subject == "anonymous" and stranger.outcome == "4"
    _secrets_absent([ok, replay, elsewhere, stranger], form["client_assertion"])


def test_refresh_and_revocation(audited: IdentityService, trail: Trail) -> None:
    audited.accounts.add_user("mother", PASSWORD, "resident", patients=["p1"])
    first = audited.token(_password("mother"))
    trail.take()
    second = audited.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, address=ADDRESS
    )
    with pytest.raises(OAuthError):  # a rotated token used again: the session ends
        audited.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    with pytest.raises(OAuthError):
        audited.token({"grant_type": "refresh_token", "refresh_token": "rt.unknown"})
    refreshed, reused, unknown = trail.take()
    assert (refreshed.subtype, refreshed.outcome, refreshed.detail["grant"]) == (
        "login",
        "0",
        "refresh_token",
    )
    assert refreshed.principal.subject == "user:mother" and refreshed.principal.address == ADDRESS
    assert reused.principal.subject == "user:mother" and reused.outcome == "4"
    assert unknown.principal.subject == "anonymous"
    audited.revoke({"token": second["access_token"]}, address=ADDRESS)
    audited.revoke({"token": second["refresh_token"]}, address=ADDRESS)
    audited.revoke({"token": "not-a-token"}, address=ADDRESS)
    access, refresh, forged = trail.take()
    assert (access.subtype, access.outcome, access.principal.subject) == ("logout", "0", "user:mother")
    assert access.principal.address == ADDRESS and access.principal.token_id
    assert (refresh.subtype, refresh.outcome, refresh.principal.subject) == ("logout", "0", "user:mother")
    assert (forged.subtype, forged.outcome, forged.principal.subject) == ("logout", "4", "anonymous")
    tokens = [a[k] for a in (first, second) for k in ("access_token", "refresh_token")]
    _secrets_absent([refreshed, reused, unknown, access, refresh, forged], *tokens)


def test_refused_bearer_tokens(audited: IdentityService, trail: Trail, clock: Clock) -> None:
    audited.accounts.add_user("dr-wang", PASSWORD, "clinician")
    token = audited.token(_password("dr-wang"))["access_token"]
    assert audited.authenticate(token, address=ADDRESS).subject == "user:dr-wang"
    trail.take()
    with pytest.raises(Unauthenticated):
        audited.authenticate("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyOmRyLXdhbmcifQ.", address=ADDRESS)
    [forged] = trail.take()
    audited.revoke({"token": token})
    trail.take()
    with pytest.raises(Unauthenticated):
        audited.authenticate(token, address=ADDRESS)
    clock.advance(3600)
    with pytest.raises(Unauthenticated):
        audited.authenticate(token, address=ADDRESS)
    revoked, expired = trail.events
    # A forged token names nobody, whatever its payload claims.
    assert (forged.subtype, forged.outcome, forged.principal.subject) == ("authenticate", "4", "anonymous")
    assert forged.principal.address == ADDRESS
    assert revoked.principal.subject == "user:dr-wang" and "revoked" in revoked.detail["reason"]
    assert expired.principal.subject == "user:dr-wang" and "expired" in expired.detail["reason"]
    assert all(e.principal.address == ADDRESS for e in trail.events)
    _secrets_absent(trail.events, token)
    audited.refuse_anonymous(ADDRESS, "no bearer token")
    assert trail.events[-1].principal.subject == "anonymous" and trail.events[-1].outcome == "4"


def test_a_broken_trail_does_not_turn_a_refusal_into_an_error(audited: IdentityService, trail: Trail) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the audit database is down")

    trail.accessed = broken  # type: ignore[method-assign]
    with pytest.raises(Unauthenticated):
        audited.authenticate("not.a.token")


def test_administration_is_audited(audited: IdentityService, trail: Trail) -> None:
    operator = platform_principal("cli:ops")
    key = ClientKey("ES256")
    with acting_as(operator):
        audited.accounts.add_user("u1", PASSWORD, "clinician", with_totp=True)
        audited.accounts.set_user_disabled("u1", True)
        audited.accounts.set_user_disabled("u1", False)
        audited.accounts.unlock_user("u1")
        audited.accounts.reset_password("u1", "another passphrase")
        audited.accounts.set_totp("u1", False)
        audited.accounts.add_client("c1", scopes="system/*.rs", jwks=orjson.dumps(key.jwks()).decode())
        audited.accounts.set_client_disabled("c1", True)
        audited.accounts.set_client_disabled("c1", False)
        token = audited.issue_token(client_id="c1", minutes=5)
        kid = audited.rotate_key()
        with pytest.raises(InvalidRequest):
            audited.accounts.add_user("u1", PASSWORD, "clinician")
    events = trail.take()
    assert all(e.subtype == "security-admin" for e in events)
    assert all(
        e.principal.subject == "platform:cli:ops" and e.principal.role is Role.PLATFORM for e in events
    )
    changes = [(e.detail["change"], e.detail["target"], e.outcome) for e in events]
    assert changes == [
        ("add-user", "user:u1", "0"),
        ("disable-user", "user:u1", "0"),
        ("enable-user", "user:u1", "0"),
        ("unlock-user", "user:u1", "0"),
        ("reset-password", "user:u1", "0"),
        ("remove-totp", "user:u1", "0"),
        ("add-client", "client:c1", "0"),
        ("disable-client", "client:c1", "0"),
        ("enable-client", "client:c1", "0"),
        ("issue-token", "client:c1", "0"),
        ("rotate-key", f"signing-key:{kid}", "0"),
        ("add-user", "user:u1", "4"),
    ]
    assert events[0].action == "C" and events[0].detail["role"] == "clinician"
    assert events[-1].detail["reason"] == "user 'u1' exists already"
    _secrets_absent(events, PASSWORD, "another passphrase", token)
    # Without a principal of the running work, the platform itself administers.
    audited.accounts.unlock_user("u1")
    assert trail.take()[0].principal.subject == "platform:identity-admin"


def test_refused_operator_tokens_are_audited(audited: IdentityService, trail: Trail) -> None:
    with pytest.raises(Exception, match="no enabled user"):
        audited.issue_token(username="ghost")
    [refused] = trail.take()
    assert (refused.detail["change"], refused.detail["target"], refused.outcome) == (
        "issue-token",
        "user:ghost",
        "4",
    )
