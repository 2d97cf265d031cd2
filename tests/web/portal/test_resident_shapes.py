"""The resident pages' pure parts: the Consent they write, read back by the security layer, and the rows of
"who viewed my record" from AuditEvents."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson

from rhip.security.audit.balp import audit_event
from rhip.security.audit.fhir_page import public_view
from rhip.security.consent import rules_of
from rhip.security.principal import Principal, Role
from rhip.security.scopes import parse_scopes
from rhip.web import portal
from rhip.web.portal.resident_consent import consent_resource
from rhip.web.portal.resident_viewers import shape_event

NOW = "2026-11-26T10:00:00Z"


def test_the_consent_written_is_the_one_the_security_layer_reads() -> None:
    consent = consent_resource("p1", ["PSY", "HIV", "NOT-A-CATEGORY"], ["org-B"], None)
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy" and "id" not in consent
    labels, orgs = rules_of({**consent, "id": "c1"})
    assert labels.effect == "deny" and labels.labels == {"PSY", "HIV"} and not labels.organizations
    assert labels.applies(frozenset({"org-A"}), frozenset({"PSY"}), NOW)
    assert not labels.applies(frozenset({"org-A"}), frozenset({"SUD"}), NOW)
    assert orgs.effect == "deny" and orgs.organizations == {"org-B"} and not orgs.labels
    assert orgs.applies(frozenset({"org-B"}), frozenset(), NOW)
    assert not orgs.applies(frozenset({"org-A"}), frozenset(), NOW)
    # Nothing denied: the default (share under the platform's rules), no rule at all; an id is kept.
    empty = consent_resource("p1", [], [], "c1")
    assert empty["id"] == "c1" and rules_of(empty) == []


def _event(glass: str | None = None, subtype: str = "read") -> dict[str, Any]:
    doctor = Principal(
        subject="user:dr-wang",
        role=Role.CLINICIAN,
        scopes=parse_scopes("user/*.rs"),
        institution="510722121X01",
        address="10.1.2.3",
        token_id="tok-1",
    )
    event = audit_event(
        doctor,
        id="e1",
        recorded_us=1_764_150_000_000_000,  # 2025-11-26T09:40:00Z
        action="R",
        subtype=subtype,
        resources=[("Observation", "o1", 1)],
        patients=["p1"],
        query="code=1234",
        detail={"break-glass": glass} if glass else None,
    )
    shown: dict[str, Any] = orjson.loads(public_view(orjson.dumps(event), ("p1",)))
    return shown


def test_a_viewing_row_names_who_when_where_and_why_never_the_address() -> None:
    event = _event()
    assert "10.1.2.3" not in str(event)
    row = shape_event(event)
    assert row["account"] == "dr-wang" and row["role"] == "clinician" and not row["client"]
    assert row["institution"] == "510722121X01" and row["purpose"] == "TREAT" and not row["glass"]
    assert row["interaction"] == "read" and row["when"] == "2025-11-26 17:40"  # Asia/Shanghai
    assert "10.1.2.3" not in str(row)


def test_break_the_glass_is_marked_with_its_reason() -> None:
    row = shape_event(_event(glass="急诊抢救"))
    assert row["glass"] and row["purpose"] == "ETREAT" and row["reason"] == "急诊抢救"


def test_every_word_of_the_resident_pages_is_in_both_languages() -> None:
    folder = Path(portal.__file__).parent
    words = json.loads((folder / "messages" / "resident.json").read_text(encoding="utf-8"))
    assert all(w.get("zh") and w.get("en") for w in words.values())
    common = json.loads((folder / "messages" / "common.json").read_text(encoding="utf-8"))
    used: set[str] = set()
    for template in (folder / "templates" / "resident").glob("*.html"):
        used |= set(re.findall(r"""t\(["']([a-z_.]+[a-z_])["']""", template.read_text(encoding="utf-8")))
    source = (folder / "resident.py").read_text(encoding="utf-8")
    used |= set(re.findall(r'"(me\.[a-z_.]+)"', source))
    missing = {k for k in used if k not in words and k not in common}
    assert not missing, missing
