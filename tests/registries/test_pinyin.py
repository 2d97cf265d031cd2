"""Pinyin readings of names as the registries index them."""

from __future__ import annotations

from rhip.registries.pinyin import readings, syllables
from rhip.registries.search import person_readings, place_readings


def test_syllables_follow_phrases_and_keep_ascii_words() -> None:
    assert syllables("重庆市第3人民医院 ABC") == (
        "chong", "qing", "shi", "di", "3", "ren", "min", "yi", "yuan", "abc",
    )  # fmt: skip
    assert syllables("吕") == ("lv",) and syllables("  ") == () and syllables("—") == ()


def test_a_place_is_found_from_any_syllable_full_or_by_initials() -> None:
    found = readings("绵阳市人民医院", from_every_syllable=True)
    assert {"mianyangshirenminyiyuan", "mysrmyy", "renminyiyuan", "rmyy"} <= set(found)
    assert len(found) == len(set(found))
    assert place_readings("人民医院", "string") == ["renminyiyuan", "rmyy", "minyiyuan", "myy", "yiyuan",
                                                   "yy", "yuan", "y"]  # fmt: skip


def test_a_person_is_found_by_the_whole_name() -> None:
    assert person_readings({"text": "王秀兰"}, "HumanName") == ["wangxiulan", "wxl"]
    assert person_readings({"family": "李", "given": ["建", "国"]}, "HumanName") == ["lijianguo", "ljg"]
    assert person_readings("王秀兰", "string") == ()
