"""Sensitivity labels added on write from ICD-10 codes (data/sensitivity.json)."""

from __future__ import annotations

from rhip.security.labels import sensitivity_table

ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"


def _condition(code: str) -> dict:
    return {"resourceType": "Condition", "code": {"coding": [{"system": ICD10, "code": code}]}}


def test_mental_health_hiv_and_reproductive_codes_are_labelled() -> None:
    table = sensitivity_table()
    assert table.categories_of("F32.900") == {"PSY"}
    assert table.categories_of("F10.2") == {"SUD"}
    assert table.categories_of("B20") == {"HIV"}
    assert table.categories_of("A53.9") == {"STD"}
    assert table.categories_of("O03") == {"SEX"}
    assert table.categories_of("I10") == set()
    labelled = table.label(_condition("F32.9"))
    assert labelled["meta"]["security"] == [{"system": table.label_system, "code": "PSY"}]


def test_existing_labels_are_kept_and_not_repeated() -> None:
    table = sensitivity_table()
    resource = _condition("B20.1") | {
        "meta": {"security": [{"system": table.label_system, "code": "HIV"}, {"code": "R"}]}
    }
    assert table.label(resource) is resource
    plain = _condition("I10")
    assert table.label(plain) is plain


def test_other_code_systems_are_not_read_as_icd10() -> None:
    table = sensitivity_table()
    resource = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "F32"}]},
    }
    assert table.label(resource) is resource


def test_the_table_names_its_source() -> None:
    import json
    from importlib.resources import files

    data = json.loads(files("rhip.security").joinpath("data/sensitivity.json").read_text(encoding="utf-8"))
    assert "source" in data and "version" in data
