"""Consent resources read as rules: deny and permit provisions by institution, category and period."""

from __future__ import annotations

from rhip.security.consent import rules_of

NOW = "2026-11-26T10:00:00Z"


def _consent(provision: dict, status: str = "active") -> dict:
    return {
        "resourceType": "Consent",
        "id": "c1",
        "status": status,
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "patient": {"reference": "Patient/p1"},
        "provision": provision,
    }


def test_withdrawal_from_sharing() -> None:
    [rule] = rules_of(_consent({"type": "deny"}))
    assert rule.effect == "deny" and not rule.organizations and not rule.labels
    assert rule.applies(frozenset({"orgA"}), frozenset(), NOW)


def test_only_privacy_consents_and_known_labels_count() -> None:
    treatment = _consent({"type": "deny"}) | {"scope": {"coding": [{"code": "treatment"}]}}
    assert rules_of(treatment) == []
    [rule] = rules_of(_consent({"type": "deny", "securityLabel": [{"code": "PSY"}, {"code": "NOT-A-LABEL"}]}))
    assert rule.labels == {"PSY"}


def test_category_denial_with_a_permitted_institution() -> None:
    consent = _consent(
        {
            "type": "permit",
            "provision": [
                {"type": "deny", "securityLabel": [{"code": "PSY"}]},
                {"type": "permit", "actor": [{"reference": {"reference": "Organization/orgB"}}]},
            ],
        }
    )
    deny, permit = rules_of(consent)
    assert deny.effect == "deny" and deny.labels == {"PSY"}
    assert deny.applies(frozenset({"orgA"}), frozenset({"PSY"}), NOW)
    assert not deny.applies(frozenset({"orgA"}), frozenset({"HIV"}), NOW)
    assert permit.effect == "permit" and permit.organizations == {"orgB"}
    assert not permit.applies(frozenset({"orgA"}), frozenset(), NOW)


def test_periods_and_status() -> None:
    expired = _consent({"type": "deny", "period": {"start": "2025-01-01", "end": "2025-12-31"}})
    [rule] = rules_of(expired)
    assert not rule.applies(frozenset(), frozenset(), NOW)
    assert rule.applies(frozenset(), frozenset(), "2025-12-31T23:00:00Z")  # the end date is a whole day
    assert rules_of(_consent({"type": "deny"}, status="inactive")) == []
    assert rules_of(_consent({"type": "permit"})) == []  # restates the default
