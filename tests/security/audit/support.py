"""Principals and entries the audit-trail tests share."""

from __future__ import annotations

import uuid
from typing import Any

from rhip.db.audit import audit_row
from rhip.db.engine import Database
from rhip.security.audit.balp import audit_entry
from rhip.security.audit.repository import append_entries
from rhip.security.principal import Principal, Role
from rhip.security.scopes import parse_scopes


def clinician(name: str = "doc1", institution: str = "4501") -> Principal:
    """A clinician of an institution, signed in through its HIS client."""
    return Principal(
        f"user:{name}",
        Role.CLINICIAN,
        parse_scopes("user/*.cruds"),
        institution=institution,
        client_id="his-4501",
        token_id="jti-1",
        address="10.1.2.3",
    )


def resident(name: str = "res1", patients: tuple[str, ...] = ("p1",)) -> Principal:
    """A resident seeing their own record."""
    return Principal(f"user:{name}", Role.RESIDENT, parse_scopes("patient/*.rs"), patients=patients)


def system(client: str = "lis-4502", institution: str = "4502") -> Principal:
    """An institution's system (SMART Backend Services)."""
    return Principal(
        f"client:{client}",
        Role.SYSTEM,
        parse_scopes("system/*.cruds"),
        institution=institution,
        client_id=client,
    )


def add(db: Database, principal: Principal, recorded_us: int, **kw: Any) -> str:
    """Append one entry for ``principal`` at ``recorded_us`` (keyword arguments of ``audit_entry``); its id."""
    values: dict[str, Any] = {"action": "R", "subtype": "read"}
    values.update(kw)
    ident = str(uuid.uuid4())
    row = audit_row(audit_entry(principal, id=ident, recorded_us=recorded_us, **values))
    append_entries(db, [row])
    return ident
