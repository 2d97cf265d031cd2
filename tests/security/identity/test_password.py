"""The password grant: sign-in, lock-out, TOTP, disabled accounts, scopes of people."""

from __future__ import annotations

import time

import pytest

from rhip.core.errors import InvalidRequest
from rhip.security.identity import totp
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.passwords import Passwords
from rhip.security.identity.service import IdentityService
from rhip.security.principal import Role
from rhip.security.scopes import parse_scopes

from .support import FAST, PASSWORD, Clock


def _form(username: str = "dr-li", password: str = PASSWORD, **extra: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password, **extra}


def _refused(identity: IdentityService, form: dict[str, str], error: str = "invalid_grant") -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        identity.token(form)
    assert caught.value.error == error
    return caught.value


@pytest.fixture
def doctor(identity: IdentityService) -> IdentityService:
    identity.accounts.add_user(
        "dr-li", PASSWORD, "clinician", institution="H001", organization="org-h001", department="cardiology"
    )
    return identity


def test_sign_in(doctor: IdentityService) -> None:
    answer = doctor.token(_form())
    assert answer["scope"] == "user/*.cruds"
    assert answer["refresh_token"].startswith("rt.")
    principal = doctor.authenticate(answer["access_token"])
    assert principal.role is Role.CLINICIAN
    assert (principal.institution, principal.organization, principal.department) == (
        "H001",
        "org-h001",
        "cardiology",
    )
    assert principal.session


def test_refusals_look_alike(doctor: IdentityService) -> None:
    wrong = _refused(doctor, _form(password="wrong password!"))
    unknown = _refused(doctor, _form(username="nobody"))
    odd = _refused(doctor, _form(username="no such user; drop table"))
    assert wrong.description == unknown.description == odd.description
    _refused(doctor, {"grant_type": "password", "username": "dr-li"}, "invalid_request")


def test_unknown_user_costs_as_much_as_a_real_one(identity: IdentityService) -> None:
    """Constant-time behaviour: an unknown username costs an argon2id run of the same parameters."""
    from rhip.security.identity.config import PasswordPolicy

    dear = PasswordPolicy(time_cost=2, memory_kib=32 * 1024, parallelism=1, min_length=8)
    identity.grants.signin.passwords = Passwords(dear)
    identity.accounts.passwords = identity.grants.signin.passwords
    identity.accounts.add_user("real", PASSWORD, "clinician")

    def timed(username: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(OAuthError):
                identity.token(_form(username=username, password="wrong password!"))
            best = min(best, time.perf_counter() - started)
        return best

    identity.accounts.unlock_user("real")
    real, unknown = timed("real"), timed("nobody")
    assert unknown > real * 0.5, (real, unknown)


def test_lock_out_after_repeated_failures(doctor: IdentityService, clock: Clock) -> None:
    attempts = doctor.config.lockout_attempts
    for _ in range(attempts):
        _refused(doctor, _form(password="wrong password!"))
    # Locked: even the right password is refused, with the same message.
    refused = _refused(doctor, _form())
    assert "invalid username" in refused.description
    user = doctor.accounts.get_user("dr-li")
    assert user is not None and user.locked_until_us is not None
    clock.advance(doctor.config.lockout_minutes * 60 + 1)
    assert doctor.token(_form())["access_token"]
    user = doctor.accounts.get_user("dr-li")
    assert user is not None and user.failed_count == 0 and user.locked_until_us is None


def test_success_resets_the_failure_count(doctor: IdentityService) -> None:
    for _ in range(doctor.config.lockout_attempts - 1):
        _refused(doctor, _form(password="wrong password!"))
    doctor.token(_form())
    for _ in range(doctor.config.lockout_attempts - 1):
        _refused(doctor, _form(password="wrong password!"))
    assert doctor.token(_form())["access_token"]


def test_unlock_by_an_operator(doctor: IdentityService) -> None:
    for _ in range(doctor.config.lockout_attempts):
        _refused(doctor, _form(password="wrong password!"))
    doctor.accounts.unlock_user("dr-li")
    assert doctor.token(_form())["access_token"]


def test_disabled_user_cannot_sign_in(doctor: IdentityService) -> None:
    doctor.accounts.set_user_disabled("dr-li", True)
    _refused(doctor, _form())
    doctor.accounts.set_user_disabled("dr-li", False)
    assert doctor.token(_form())["access_token"]


def test_totp(identity: IdentityService, clock: Clock) -> None:
    uri = identity.accounts.add_user("resident-1", PASSWORD, "resident", patients=["p1"], with_totp=True)
    assert uri is not None
    secret = uri.split("secret=")[1].split("&")[0]
    missing = _refused(identity, _form("resident-1"))
    # No oracle: a right password without its code is refused exactly like a wrong password.
    wrong = _refused(identity, _form("resident-1", password="not the password"))
    assert missing.body() == wrong.body() and missing.status == wrong.status
    assert "required" not in missing.description
    identity.accounts.unlock_user("resident-1")
    _refused(
        identity,
        _form("resident-1", totp="000000" if totp.code_at(secret, clock()) != "000000" else "111111"),
    )
    code = totp.code_at(secret, clock())
    answer = identity.token(_form("resident-1", totp=code))
    assert answer["patient"] == "p1"
    # A code works once, even inside its 30 seconds.
    _refused(identity, _form("resident-1", totp=code))
    clock.advance(totp.INTERVAL)
    assert identity.token(_form("resident-1", totp=totp.code_at(secret, clock())))


def test_totp_failures_count_towards_lock_out(identity: IdentityService) -> None:
    identity.accounts.add_user("resident-2", PASSWORD, "resident", with_totp=True)
    for _ in range(identity.config.lockout_attempts):
        _refused(identity, _form("resident-2", totp="123456"))
    user = identity.accounts.get_user("resident-2")
    assert user is not None and user.locked_until_us is not None


def test_totp_secret_is_sealed_in_the_database(identity: IdentityService) -> None:
    from sqlalchemy import text

    uri = identity.accounts.add_user("resident-3", PASSWORD, "resident", with_totp=True)
    assert uri is not None
    secret = uri.split("secret=")[1].split("&")[0]
    with identity.db.read() as conn:
        stored = conn.execute(
            text("SELECT totp_secret FROM security_user WHERE username='resident-3'")
        ).scalar()
    assert stored.startswith("v1:") and secret not in stored
    assert all(not u.has_totp for u in identity.accounts.list_users() if u.username != "resident-3")


def test_scopes_of_each_role(identity: IdentityService) -> None:
    expected = {
        "admin": "system/*.cruds user/*.cruds",
        "clinician": "user/*.cruds",
        "public-health": "user/*.rs",
        "statistician": "user/*.s",
        "resident": "patient/*.rs patient/Consent.cu",
    }
    for role, scopes in expected.items():
        identity.accounts.add_user(f"u-{role}", PASSWORD, role)
        answer = identity.token(_form(f"u-{role}"))
        assert answer["scope"] == scopes, role


def test_scope_escalation_by_people(identity: IdentityService) -> None:
    identity.accounts.add_user("stat", PASSWORD, "statistician")
    answer = identity.token(_form("stat", scope="user/*.cruds system/*.cruds"))
    assert answer["scope"] == "user/*.s"
    _refused(identity, _form("stat", scope="user/Patient.r"), "invalid_scope")
    identity.accounts.add_user("res", PASSWORD, "resident")
    _refused(identity, _form("res", scope="user/*.rs"), "invalid_scope")
    answer = identity.token(_form("res", scope="patient/Observation.rs openid offline_access"))
    assert answer["scope"] == "patient/Observation.rs"


def test_portal_client_narrows_scopes(doctor: IdentityService) -> None:
    doctor.accounts.add_client("portal", scopes="user/Patient.rs user/Observation.rs")
    answer = doctor.token(_form(client_id="portal"))
    assert answer["scope"] == "user/Observation.rs user/Patient.rs"
    principal = doctor.authenticate(answer["access_token"])
    assert principal.client_id == "portal"
    assert principal.scopes == parse_scopes("user/Observation.rs user/Patient.rs")
    _refused(doctor, _form(client_id="unknown-portal"), "invalid_client")
    doctor.accounts.set_client_disabled("portal", True)
    _refused(doctor, _form(client_id="portal"), "invalid_client")


def test_account_checks(identity: IdentityService) -> None:
    with pytest.raises(InvalidRequest, match="at least"):
        identity.accounts.add_user("u1", "short", "clinician")
    with pytest.raises(InvalidRequest, match="cannot have role"):
        identity.accounts.add_user("u2", PASSWORD, "system")
    with pytest.raises(InvalidRequest, match="cannot have role"):
        identity.accounts.add_user("u3", PASSWORD, "platform")
    with pytest.raises(InvalidRequest, match="username"):
        identity.accounts.add_user("has space", PASSWORD, "clinician")
    with pytest.raises(InvalidRequest, match="Patient id"):
        identity.accounts.add_user("u4", PASSWORD, "resident", patients=["bad id!"])
    with pytest.raises(InvalidRequest, match="district"):
        identity.accounts.add_user("u5", PASSWORD, "public-health", district="Chengdu")
    identity.accounts.add_user("u6", PASSWORD, "clinician")
    with pytest.raises(InvalidRequest, match="exists"):
        identity.accounts.add_user("u6", PASSWORD, "clinician")


def test_reset_password_ends_sessions(doctor: IdentityService) -> None:
    answer = doctor.token(_form())
    doctor.accounts.reset_password("dr-li", "a new passphrase")
    _refused(doctor, _form())
    assert doctor.token(_form(password="a new passphrase"))
    refresh = {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]}
    _refused(doctor, refresh)


def test_rehash_on_sign_in_when_the_cost_changed(doctor: IdentityService) -> None:
    from sqlalchemy import text

    dearer = type(FAST)(time_cost=2, memory_kib=16, parallelism=1, min_length=8)
    doctor.grants.signin.passwords = Passwords(dearer)
    doctor.token(_form())
    with doctor.db.read() as conn:
        stored = conn.execute(text("SELECT password_hash FROM security_user")).scalar()
    assert "t=2" in stored
