"""Matching decisions on the traps of Chinese registration data, each with its own case (issue #4 §2)."""

from __future__ import annotations

import pytest

from rhip.empi.features import BORROWED, DOUBTFUL, TRUSTED
from rhip.empi.matching import LINK, NEW, REVIEW, decide, score_masters, score_pair
from rhip.empi.model import MatchModel, default_model

from .factory import features, id_number

AREA = "510703"


@pytest.fixture(scope="module")
def model() -> MatchModel:
    return default_model()


def outcome(model: MatchModel, query, *others) -> str:
    candidates = [(f, f"m-{f.patient_id}") for f in others]
    return decide(model, score_masters(model, query, candidates)).outcome


# -- what must link -------------------------------------------------------------------------------------


def test_same_person_at_two_institutions_links(model: MatchModel) -> None:
    number = id_number(AREA, "1980-03-15", 11)
    a = features(id_no=number, mrn="urn:rhip:mrn:A")
    b = features(id_no=number, mrn="urn:rhip:mrn:B", phone=None)
    assert outcome(model, b, a) == LINK


def test_homophone_name_without_id_number_links_on_birth_phone_and_home(model: MatchModel) -> None:
    a = features(given="丽", id_no=id_number(AREA, "1980-03-15", 12), sex="female")
    b = features(given="莉", id_no=None, sex="female", mrn="urn:rhip:mrn:B")
    assert a.pinyin == b.pinyin
    assert outcome(model, b, a) == LINK


def test_fifteen_digit_number_is_the_eighteen_digit_one(model: MatchModel) -> None:
    long = id_number(AREA, "1962-09-21", 11)
    short = long[:6] + long[8:17]
    a = features(birth="1962-09-21", id_no=long)
    b = features(birth="1962-09-21", id_no=short, mrn="urn:rhip:mrn:B", phone=None)
    assert b.id_number == long and "upgraded" in b.id_flags
    assert outcome(model, b, a) == LINK


def test_mistyped_id_number_still_links(model: MatchModel) -> None:
    number = id_number(AREA, "1980-03-15", 11)
    typo = number[:10] + number[11] + number[10] + number[12:]
    a = features(id_no=number)
    b = features(id_no=typo, mrn="urn:rhip:mrn:B")
    assert b.id_trust == DOUBTFUL
    assert outcome(model, b, a) == LINK


# -- the traps ------------------------------------------------------------------------------------------


def test_twins_same_birth_address_and_surname_are_two_people(model: MatchModel) -> None:
    a = features(given="大伟", id_no=None)
    b = features(given="小伟", id_no=None, mrn="urn:rhip:mrn:B")
    pair = score_pair(model, b, a)
    assert pair.veto == "twins"
    assert outcome(model, b, a) == NEW


def test_flagged_twins_at_another_address_are_two_people(model: MatchModel) -> None:
    a = features(given="思远", twin=True, id_no=None, village="510703001008")  # 思源 would be a homophone
    b = features(given="思明", twin=True, id_no=None, village="510703001003", mrn="urn:rhip:mrn:B")
    assert score_pair(model, b, a).veto == "twins"


def test_newborn_twins_under_the_mothers_name_are_two_people(model: MatchModel) -> None:
    a = features(family="王丽", given="之子", birth="2024-05-01", sex="male")
    b = features(family="王丽", given="之女", birth="2024-05-01", sex="female", mrn="urn:rhip:mrn:B")
    assert a.placeholder == b.placeholder == "王丽"
    assert score_pair(model, b, a).veto == "twins"


def test_common_name_and_birth_date_alone_does_not_link(model: MatchModel) -> None:
    share = 3e-4
    model.tf.setdefault("name", {})["张伟"] = share
    a = features(id_no=None, phone="13900000001", village="510703001003")
    b = features(id_no=None, phone="13900000002", village=None, mrn="urn:rhip:mrn:B")
    result = decide(model, score_masters(model, b, [(a, "m1")]))
    assert result.outcome != LINK


def test_parent_and_child_sharing_phone_and_address_are_two_people(model: MatchModel) -> None:
    father = features(given="建国", birth="1955-02-01", id_no=None)
    son = features(given="志强", birth="1982-02-01", id_no=None, mrn="urn:rhip:mrn:B")
    assert score_pair(model, son, father).veto == "generation-gap"
    assert outcome(model, son, father) == NEW


def test_household_sharing_phone_and_address_does_not_link(model: MatchModel) -> None:
    husband = features(given="强", birth="1978-06-01", id_no=None)
    wife = features(
        family="李", given="娟", birth="1980-01-09", sex="female", id_no=None, mrn="urn:rhip:mrn:B"
    )
    assert outcome(model, wife, husband) == NEW


def test_baby_under_the_mothers_id_number_is_not_the_mother(model: MatchModel) -> None:
    mothers = id_number(AREA, "1992-04-10", 22)
    mother = features(family="王", given="丽", birth="1992-04-10", sex="female", id_no=mothers)
    baby = features(family="王丽", given="之子", birth="2024-05-01", id_no=mothers, mrn="urn:rhip:mrn:B")
    assert baby.id_trust == BORROWED and "borrowed" in baby.id_flags
    assert outcome(model, baby, mother) == NEW


def test_id_number_contradicting_the_record_is_flagged_and_weighs_less(model: MatchModel) -> None:
    number = id_number(AREA, "1980-03-15", 11)
    trusted = features(id_no=number, phone=None, village=None)
    contradicted = features(id_no=number, birth="1980-03-16", phone=None, village=None, mrn="urn:rhip:mrn:B")
    wrong_sex = features(id_no=number, sex="female", phone=None, village=None, mrn="urn:rhip:mrn:C")
    assert trusted.id_trust == TRUSTED
    assert contradicted.id_trust == DOUBTFUL and "birth-date" in contradicted.id_flags
    assert wrong_sex.id_trust == DOUBTFUL and "sex" in wrong_sex.id_flags
    same = score_pair(model, features(id_no=number, phone=None, village=None), trusted)
    doubtful = score_pair(model, features(id_no=number, phone=None, village=None), contradicted)
    assert doubtful.gamma[0] == 1 and same.gamma[0] == 0
    assert model.weights[0][1] < model.weights[0][0]


def test_two_different_valid_id_numbers_are_two_people_whatever_else_agrees(model: MatchModel) -> None:
    a = features(id_no=id_number(AREA, "1980-03-15", 11))
    b = features(id_no=id_number(AREA, "1980-03-15", 13), mrn="urn:rhip:mrn:B")
    pair = score_pair(model, b, a)
    assert pair.veto == "different-id-numbers"
    assert outcome(model, b, a) == NEW


def test_probable_match_goes_to_review(model: MatchModel) -> None:
    a = features(
        given="秀英", sex="female", birth="1950-01-01", id_no=None, phone=None, village="510703001003"
    )
    b = features(
        given="秀英",
        sex="female",
        birth="1950-01-01",
        id_no=None,
        phone=None,
        village=None,
        mrn="urn:rhip:mrn:B",
    )
    result = decide(model, score_masters(model, b, [(a, "m1")]))
    assert result.outcome in (REVIEW, NEW)
    assert result.outcome != LINK


def test_manual_no_match_vetoes_the_master(model: MatchModel) -> None:
    number = id_number(AREA, "1980-03-15", 11)
    a = features(id_no=number)
    b = features(id_no=number, mrn="urn:rhip:mrn:B")
    masters = score_masters(model, b, [(a, "m1")], no_match={a.patient_id})
    assert masters[0].veto == "manual-no-match"
    assert decide(model, masters).outcome == NEW
