"""用户与接入系统: users and client systems created, disabled and registered through the portal, audited."""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.testclient import TestClient

from .conftest import PortalSite, sign_in
from .test_admin_directory import as_user, csrf, fresh_client, own_account, user_row


def _audit(admin: TestClient, **query: str) -> str:
    page = admin.get("/portal/admin/audit", params={"search": "1", **query})
    assert page.status_code == 200, page.text
    return str(page.text)


def test_the_accounts_page_lists_users_and_clients(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    page = admin.get("/portal/admin/accounts")
    assert page.status_code == 200
    assert '<table id="users">' in page.text and '<table id="clients">' in page.text
    assert 'id="add-user"' in page.text
    assert "demo-doctor" in user_row(page.text, "demo-doctor")
    assert "password_hash" not in page.text and "$argon2" not in page.text


def test_a_user_is_created_signs_in_and_is_disabled(
    portal_app: Callable[[str | None], TestClient], portal_site: PortalSite
) -> None:
    admin = as_user(portal_app, "demo-admin")
    doctor = portal_site.accounts["demo-doctor"]
    assert doctor.scope.startswith("institution ")
    # The demo doctor's binding, read from the users table.
    row = user_row(admin.get("/portal/admin/accounts").text, "demo-doctor")
    found = re.search(r"机构 (\S+) \(Organization/([^)]+)\)", row)
    assert found is not None
    institution, organization = found.groups()
    created = admin.post(
        "/portal/admin/accounts/users",
        data={
            "csrf": csrf(admin),
            "username": "h3-new-doctor",
            "role": "clinician",
            "password": "",
            "institution": institution,
            "organization": organization,
            "department": "",
        },
    )
    assert created.status_code == 200, created.text
    shown = re.search(r'<code id="new-password">([^<]+)</code>', created.text)
    assert shown is not None
    password = shown.group(1).replace("&#34;", '"').replace("&amp;", "&")
    assert "h3-new-doctor" in user_row(created.text, "h3-new-doctor")
    # The password is shown once: the list does not show it again.
    assert password not in admin.get("/portal/admin/accounts").text
    # The new user signs in and lands on the workbench.
    new = fresh_client(portal_app)
    signed = sign_in(new, "h3-new-doctor", password)
    assert signed.history and signed.history[0].headers["location"] == "/portal/clinician"
    # Disabled: the open session stops working and signing in again is refused.
    disabled = admin.post(
        "/portal/admin/accounts/users/h3-new-doctor/disable",
        data={"csrf": csrf(admin)},
        follow_redirects=False,
    )
    assert disabled.status_code == 303
    assert "已停用" in user_row(admin.get("/portal/admin/accounts").text, "h3-new-doctor")
    refused = sign_in(fresh_client(portal_app), "h3-new-doctor", password)
    assert refused.status_code == 401
    after = new.get("/portal/clinician", follow_redirects=False)
    assert after.status_code == 303 and "/portal/signin" in after.headers["location"]
    # Both changes are in the audit log, made by the administrator.
    log = _audit(admin, user="demo-admin")
    assert "change: add-user" in log and "target: user:h3-new-doctor" in log
    assert "change: disable-user" in log


def test_a_typed_password_must_meet_the_policy(
    portal_app: Callable[[str | None], TestClient], portal_site: PortalSite
) -> None:
    admin = as_user(portal_app, "demo-admin")
    weak = admin.post(
        "/portal/admin/accounts/users",
        data={"csrf": csrf(admin), "username": "h3-weak", "role": "statistician", "password": "short"},
    )
    assert weak.status_code == 400 and 'id="user-error"' in weak.text and "8 characters" in weak.text
    assert 'data-username="h3-weak"' not in weak.text
    resident_form = {
        "csrf": csrf(admin),
        "username": "h3-resident",
        "role": "resident",
        "password": "a-long-enough-pass",
        "patients": "no-such-patient-1",
    }
    unknown = admin.post("/portal/admin/accounts/users", data=resident_form)
    assert unknown.status_code == 400 and "找不到这些居民" in unknown.text
    typed = admin.post(
        "/portal/admin/accounts/users",
        data={**resident_form, "patients": portal_site.resident_patient},
    )
    assert typed.status_code == 200 and 'id="new-password"' not in typed.text
    resident = fresh_client(portal_app)
    landed = sign_in(resident, "h3-resident", "a-long-enough-pass")
    assert landed.history and landed.history[0].headers["location"] == "/portal/me"
    unbound = admin.post(
        "/portal/admin/accounts/users",
        data={"csrf": csrf(admin), "username": "h3-cdc", "role": "public-health", "password": ""},
    )
    assert unbound.status_code == 400 and "辖区代码" in unbound.text
    # Refusals are audited like the identity service's own.
    log = _audit(admin, user="demo-admin")
    assert "target: user:h3-cdc" in log and "target: user:h3-weak" in log


def test_a_client_is_registered_with_a_jwks_and_disabled(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    admin = as_user(portal_app, "demo-admin")
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwks = orjson.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "ES256"}]}).decode()
    done = admin.post(
        "/portal/admin/accounts/clients",
        data={"csrf": csrf(admin), "client_id": "h3-his", "name": "测试 HIS", "jwks": jwks},
    )
    assert done.status_code == 200 and "已登记接入系统 h3-his" in done.text
    assert '<tr data-client="h3-his">' in done.text and "已登记公钥" in done.text
    # A PEM public key is accepted too; a private key never.
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (
        admin.post(
            "/portal/admin/accounts/clients",
            data={"csrf": csrf(admin), "client_id": "h3-pem", "jwks": pem.decode()},
        ).status_code
        == 200
    )
    private = orjson.dumps({"keys": [ECAlgorithm.to_jwk(key, as_dict=True)]}).decode()
    leak = admin.post(
        "/portal/admin/accounts/clients",
        data={"csrf": csrf(admin), "client_id": "h3-leak", "jwks": private},
    )
    assert leak.status_code == 400 and "private" in leak.text
    local = admin.post(
        "/portal/admin/accounts/clients",
        data={"csrf": csrf(admin), "client_id": "h3-file", "jwks_url": "/etc/passwd"},
    )
    assert local.status_code == 400 and 'data-client="h3-file"' not in local.text
    off = admin.post(
        "/portal/admin/accounts/clients/h3-his/disable", data={"csrf": csrf(admin)}, follow_redirects=True
    )
    row = re.search(r'<tr data-client="h3-his">(.*?)</tr>', off.text, re.S)
    assert row is not None and "已停用" in row.group(1)
    assert "target: client:h3-his" in _audit(admin, user="demo-admin")


def test_account_changes_need_csrf_and_the_admin_role(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    admin = as_user(portal_app, "demo-admin")
    forged = admin.post(
        "/portal/admin/accounts/users",
        data={"csrf": "forged", "username": "h3-forged", "role": "admin", "password": "long-password-1"},
    )
    assert forged.status_code == 403
    assert 'data-username="h3-forged"' not in admin.get("/portal/admin/accounts").text
    assert admin.post("/portal/admin/accounts/users/demo-stats/disable", data={}).status_code == 403
    for role in ("clinician", "resident"):
        other = as_user(portal_app, own_account(portal_app, role))
        assert other.get("/portal/admin/accounts").status_code == 403
        response = other.post(
            "/portal/admin/accounts/users",
            data={"csrf": csrf(other), "username": "h3-x", "role": "admin", "password": "long-password-1"},
        )
        assert response.status_code == 403


def test_users_are_filtered_by_name_and_role(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    page = admin.get("/portal/admin/accounts", params={"uq": "DOCTOR"})
    assert 'data-username="demo-doctor"' in page.text and 'data-username="demo-admin"' not in page.text
    residents = admin.get("/portal/admin/accounts", params={"urole": "resident"})
    assert 'data-username="demo-resident"' in residents.text
    assert 'data-username="demo-doctor"' not in residents.text


def test_the_pages_speak_english_too(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    admin.cookies.set("rhip_lang", "en")
    try:
        accounts = admin.get("/portal/admin/accounts").text
        assert 'lang="en"' in accounts and "Add a user" in accounts and "Client systems" in accounts
        institutions = admin.get("/portal/admin/institutions").text
        assert "Import a CSV file" in institutions and "Institution code" in institutions
        audit = admin.get("/portal/admin/audit", params={"search": "1", "user": "demo-admin"}).text
        assert "Audit entries (newest first)" in audit and "Verify the chain" in audit
        for page in (accounts, institutions, audit):
            # No message key is left without its words.
            assert re.search(r"\bdir\.[a-z_]+(\.[a-z_]+)?\b", page) is None
    finally:
        admin.cookies.delete("rhip_lang")
