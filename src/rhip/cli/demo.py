"""``rhip demo-accounts``: one sign-in per role on the demo region, with fresh passwords, printed.

The clinician works at the hospital with the most encounters; the public-health officer covers that
hospital's district; the resident is a Patient with a visit there. Run again, it sets new passwords.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.table import Table

from rhip.bootstrap.settings import Settings
from rhip.core.errors import ResourceNotFound

console = Console(width=160)  # ids are printed whole, whatever the terminal
DIVISION = "urn:rhip:ext:division"
INSTITUTION_CODE = "urn:oid:2.16.156.10011.1.5"


@dataclass(frozen=True)
class DemoAccount:
    """One demo account as printed."""

    username: str
    role: str
    password: str
    scope: str  # what it is bound to, in words


def _password() -> str:
    return secrets.token_urlsafe(9)


def make_demo_accounts(settings: Settings, password: Callable[[str], str] | None = None) -> list[DemoAccount]:
    """Create (or reset the password of) one account per role on the loaded region; the accounts.

    ``password``: the password of each username (default: a fresh random one each run).
    """
    from rhip.bootstrap.security import identity_config
    from rhip.cli.main import _platform
    from rhip.security.identity.service import IdentityService

    choose = password or (lambda _username: _password())
    platform = _platform(settings)
    try:
        assert platform.store is not None and platform.parser is not None
        store, parser = platform.store, platform.parser
        counts: Counter[str] = Counter()
        patients: dict[str, str] = {}
        query = parser.parse("Encounter", [("_count", "1000")])
        page = store.search(query)
        for _ in range(20):  # a sample of encounters is enough to find a busy hospital
            for m in page.matches:
                enc = m.resource()
                org = str((enc.get("serviceProvider") or {}).get("reference", "")).removeprefix(
                    "Organization/"
                )
                subject = str((enc.get("subject") or {}).get("reference", "")).removeprefix("Patient/")
                if org and subject:
                    counts[org] += 1
                    patients.setdefault(org, subject)
            if not page.next_page:
                break
            query.page = page.next_page
            page = store.search(query)
        if not counts:
            console.print("[red]the region has no encounters: load the demo region first (make demo)[/red]")
            raise typer.Exit(1)
        org_id = counts.most_common(1)[0][0]
        organization = store.read("Organization", org_id).resource()
        code = next(
            (i["value"] for i in organization.get("identifier", []) if i.get("system") == INSTITUTION_CODE),
            org_id,
        )
        division = next(
            (
                e.get("valueCode", "")
                for a in organization.get("address", [])
                for e in a.get("extension", [])
                if e.get("url") == DIVISION
            ),
            "",
        )
        district = str(division)[:6]
        resident = patients[org_id]
    finally:
        platform.close()
    from rhip.cli.main import _database
    from rhip.security.audit.trail import AuditConfig, AuditTrail

    db = _database(settings)
    trail = AuditTrail(db, AuditConfig(algorithm=settings.security.audit_hash))
    try:
        service = IdentityService(db, identity_config(settings), audit=trail)
        wanted = [
            ("demo-admin", "admin", {}, "the whole platform"),
            (
                "demo-doctor",
                "clinician",
                {"institution": code, "organization": org_id},
                f"institution {code}",
            ),
            ("demo-cdc", "public-health", {"district": district}, f"district {district}"),
            ("demo-stats", "statistician", {}, "counts only"),
            ("demo-resident", "resident", {"patients": [resident]}, f"Patient/{resident}"),
        ]
        made = []
        for username, role, binding, scope in wanted:
            secret = choose(username)
            if service.accounts.get_user(username) is None:
                service.accounts.add_user(username, secret, role, **binding)  # type: ignore[arg-type]
            else:
                try:
                    service.accounts.reset_password(username, secret)
                except ResourceNotFound:
                    continue
            made.append(DemoAccount(username, role, secret, scope))
    finally:
        try:
            trail.close()  # the account changes are security events: in the audit log like any other
        finally:
            db.dispose()
    return made


def demo_accounts() -> None:
    """Create (or reset) one account per role on the demo region and print them."""
    from rhip.cli.main import _settings

    settings = _settings()
    made = make_demo_accounts(settings)
    base = f"http://{settings.server.host}:{settings.server.port}"
    table = Table(title=f"demo accounts (演示账号) — sign in to the portal at {base}/portal/")
    for column in ("username", "role", "password", "bound to"):
        table.add_column(column)
    for a in made:
        table.add_row(a.username, a.role, a.password, a.scope)
    console.print(table)
    console.print(
        "a token: curl -s -d grant_type=password -d username=demo-doctor -d password=<its password> "
        f"{base}/auth/token  — then: curl -H 'Authorization: Bearer <access_token>' {base}/fhir/Patient?name=…",
        soft_wrap=True,
    )
