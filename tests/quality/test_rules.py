"""The rule files: shipped ones are complete and named, an operator's replace them, broken ones are refused."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rhip.bootstrap.container import code_tables
from rhip.bootstrap.settings import Settings
from rhip.fhir.definitions import structure
from rhip.fhir.valuesets import required_valuesets
from rhip.quality.ruleset import FAMILIES, RuleFileError, load_rulesets, shipped_rule_files
from rhip.quality.scorer import Scorer
from rhip.terminology.service import TerminologyService

ZONE = ZoneInfo("Asia/Shanghai")
ARRIVAL_US = 1_790_000_000_000_000  # 2026-09-21


@pytest.fixture(scope="module")
def codes() -> TerminologyService:
    return TerminologyService(code_tables(Settings()), required_valuesets())


def scorer(codes: TerminologyService, folder: Path | None = None) -> Scorer:
    table = structure()
    return Scorer(load_rulesets(table, str(folder) if folder else None), codes, table, ZONE)


def test_shipped_files_name_their_source_and_version(codes: TerminologyService) -> None:
    texts = shipped_rule_files()
    assert set(texts) == set(FAMILIES)
    built = scorer(codes)
    for ruleset in built.sets:
        assert ruleset.version and ruleset.source, ruleset.file
        assert "source" in texts[ruleset.family].split("[[rule]]")[0]
    # Every family has rules; rule ids are unique across files.
    assert {s.family: len(s.rules) > 0 for s in built.sets} == dict.fromkeys(FAMILIES, True)
    assert len(built.rules) == sum(len(s.rules) for s in built.sets)
    assert built.labels == ["<=1h", "<=24h", "<=48h", "<=168h", "<=720h", ">720h"]


def test_an_operator_adds_a_rule_by_editing_data(codes: TerminologyService, tmp_path: Path) -> None:
    patient = {"resourceType": "Patient", "id": "x", "name": [{"text": "n"}], "gender": "male"}
    before = scorer(codes).score(patient, ARRIVAL_US, version=1, institution="")
    assert "C-PAT-MARITAL" not in {r.id for r, _ in before.outcomes}
    text = shipped_rule_files()["completeness"].replace('version = "1.0.0"', 'version = "1.1.0"')
    text += (
        '\n[[rule]]\nid = "C-PAT-MARITAL"\nresource = "Patient"\npath = "Patient.maritalStatus"\n'
        'check = "present"\nlabel_zh = "婚姻状况"\nlabel_en = "Marital status"\n'
    )
    (tmp_path / "completeness.toml").write_text(text, "utf-8")
    after = scorer(codes, tmp_path)
    outcome = {r.id: ok for r, ok in after.score(patient, ARRIVAL_US, version=1, institution="").outcomes}
    assert outcome["C-PAT-MARITAL"] is False
    assert next(s.version for s in after.sets if s.family == "completeness") == "1.1.0"


def test_a_value_set_rule_is_data_too(codes: TerminologyService, tmp_path: Path) -> None:
    text = shipped_rule_files()["validity"] + (
        '\n[[rule]]\nid = "V-PAT-BLOOD-ABO"\nresource = "Patient"\n'
        'path = "Patient.extension(\'urn:rhip:ext:abo\').value"\ncheck = "in-valueset"\n'
        'params = { valueset = "urn:rhip:vs:cv04-50-005" }\nlabel_zh = "ABO血型"\nlabel_en = "ABO blood type"\n'
    )
    (tmp_path / "validity.toml").write_text(text, "utf-8")
    built = scorer(codes, tmp_path)
    coded = {"resourceType": "Patient", "extension": [{"url": "urn:rhip:ext:abo", "valueCode": "7"}]}
    outcome = {r.id: ok for r, ok in built.score(coded, ARRIVAL_US, version=1, institution="").outcomes}
    assert outcome["V-PAT-BLOOD-ABO"] is False
    coded["extension"][0]["valueCode"] = "1"  # A型
    assert {r.id: ok for r, ok in built.score(coded, ARRIVAL_US, version=1, institution="").outcomes}[
        "V-PAT-BLOOD-ABO"
    ]


BROKEN = [
    ('check = "present"', 'check = "exists"', "unknown check 'exists'"),
    ('path = "Patient.name"', 'path = "Patient.name.substring(1)"', "not supported FHIRPath"),
    ('path = "Patient.name"', 'path = "Encounter.class"', "must start with Patient."),
    ('label_en = "Patient name"\n', "\n", "needs label_en"),
    ('family = "completeness"', 'family = "accuracy"', "family 'accuracy'"),
    ('source = "WS 365', 'sourc = "WS 365', "needs source"),
    ('id = "C-PAT-GENDER"', 'id = "C-PAT-NAME"', "C-PAT-NAME"),
]


@pytest.mark.parametrize(("old", "new", "reason"), BROKEN)
def test_a_broken_rule_file_is_refused_with_its_name(
    codes: TerminologyService, tmp_path: Path, old: str, new: str, reason: str
) -> None:
    text = shipped_rule_files()["completeness"]
    assert old in text
    (tmp_path / "completeness.toml").write_text(text.replace(old, new, 1), "utf-8")
    with pytest.raises(RuleFileError) as caught:
        scorer(codes, tmp_path)
    assert reason in str(caught.value)
    assert "completeness.toml" in str(caught.value)


def test_unknown_value_set_and_file_names_are_refused(codes: TerminologyService, tmp_path: Path) -> None:
    text = shipped_rule_files()["validity"].replace("urn:rhip:vs:gb-3304", "urn:rhip:vs:no-such-set")
    (tmp_path / "validity.toml").write_text(text, "utf-8")
    with pytest.raises(RuleFileError, match="urn:rhip:vs:no-such-set is not held"):
        scorer(codes, tmp_path)
    (tmp_path / "validity.toml").unlink()
    (tmp_path / "accuracy.toml").write_text("", "utf-8")
    with pytest.raises(RuleFileError, match="must be one of"):
        scorer(codes, tmp_path)
    with pytest.raises(RuleFileError, match="no such folder"):
        scorer(codes, tmp_path / "missing")
