"""Person names: Han (surname split, surname readings, traditional), Latin, minority, placeholders, FHIR picking."""

from __future__ import annotations

from typing import Any

import pytest

from rhip.empi.normalize.names import PersonName, name_from_fhir, normalise_name

# Every surname reading the brief lists: a name with each surname gets the surname's own reading.
SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "朴": "piao", "仇": "qiu", "查": "zha",
    "盖": "ge", "覃": "qin", "尉迟": "yuchi", "万俟": "moqi", "长孙": "zhangsun", "乐": "yue",
    "缪": "miao", "秘": "bi", "种": "chong", "黑": "he", "褚": "chu", "翟": "zhai", "宓": "mi",
    "句": "gou", "折": "she", "员": "yun", "隗": "wei", "召": "shao", "繁": "po", "过": "guo",
    "谌": "chen", "那": "na", "阚": "kan", "冼": "xian", "任": "ren", "华": "hua", "纪": "ji",
    "柏": "bai", "蕃": "pi", "沈": "shen", "石": "shi", "薄": "bo", "燕": "yan", "葛": "ge",
    "贲": "ben", "能": "nai",
}  # fmt: skip


def _name(text: str) -> PersonName:
    parsed = normalise_name(text=text)
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(("surname", "reading"), SURNAME_READINGS.items())
def test_surnames_get_their_surname_reading(surname: str, reading: str) -> None:
    name = _name(surname + "明")
    assert name.family == surname
    assert name.family_pinyin == reading
    assert name.given_pinyin == "ming"
    assert name.pinyin == reading + "ming"
    parts = normalise_name(surname, ["明"])
    assert parts is not None
    assert parts.family_pinyin == reading


def test_the_surname_reading_applies_to_the_surname_only() -> None:
    # 单 as a given name keeps its usual reading.
    name = _name("王单")
    assert (name.family_pinyin, name.given_pinyin) == ("wang", "dan")


@pytest.mark.parametrize(
    ("text", "family", "given"),
    [
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("司马光", "司马", "光"),
        ("诸葛亮", "诸葛", "亮"),
        ("上官婉儿", "上官", "婉儿"),
        ("独孤求败", "独孤", "求败"),
        ("张王丽", "张", "王丽"),  # a double surname from marriage is not assumed
        ("王伟", "王", "伟"),
        ("宗政华", "宗", "政华"),  # short name: the common single surname
        ("宗政华明", "宗政", "华明"),
    ],
)
def test_han_names_are_split_by_the_surname_table(text: str, family: str, given: str) -> None:
    name = _name(text)
    assert (name.text, name.family, name.given, name.script) == (text, family, given, "han")


def test_explicit_parts_win_over_the_table_and_the_text() -> None:
    name = normalise_name("张王", ["丽"], "张王丽")
    assert name is not None
    assert (name.family, name.given, name.text) == ("张王", "丽", "张王丽")
    disagree = normalise_name("李", ["雷"], "李磊")
    assert disagree is not None
    assert disagree.text == "李雷"


def test_a_whole_name_in_one_part_is_split() -> None:
    assert normalise_name("张伟") == _name("张伟")
    assert normalise_name(None, ["张伟"]) == _name("张伟")
    family_only = normalise_name("王", None, "王丽")
    assert family_only is not None
    assert (family_only.family, family_only.given) == ("王", "丽")
    compound_only = normalise_name("欧阳")
    assert compound_only is not None
    assert (compound_only.family, compound_only.given) == ("欧阳", "")


def test_traditional_names_become_simplified_with_the_same_pinyin() -> None:
    traditional, simplified = _name("張偉"), _name("张伟")
    assert traditional == simplified
    assert traditional.text == "张伟"
    assert traditional.pinyin == "zhangwei"
    assert _name("歐陽鋒").family == "欧阳"


def test_full_width_and_spaces_are_normalised() -> None:
    assert _name(" 王　丽 ") == _name("王丽")
    assert _name("王丽（曾用名王莉）") == _name("王丽")


def test_minority_names_with_any_dot_compare_equal() -> None:
    # A space is not a dot: clerks also write 王 丽, a surname and a given name.
    dotted = {_name(f"艾力{dot}吐尔逊") for dot in ("·", "•", "．", "・", ".", "‧")}
    assert len(dotted) == 1
    (name,) = dotted
    assert (name.text, name.family, name.given) == ("艾力吐尔逊", "吐尔逊", "艾力")
    parts = normalise_name("吐尔逊", ["艾力"], "艾力·吐尔逊")
    assert parts == name


def test_latin_names() -> None:
    expected = ("wei zhang", "zhang", "wei", "latin", "weizhang", "zhang", "wei")
    for parsed in (
        normalise_name("Zhang", ["Wei"]),
        normalise_name(text="ZHANG Wei"),
        normalise_name(text="Zhang, Wei"),
        normalise_name(text="Wei Zhang"),
        normalise_name(text="ＷＥＩ  ｚｈａｎｇ", family="zhang", given=["  "]),
        normalise_name(text="ZHANG Wei", given=["wei"]),
    ):
        assert parsed is not None
        assert (
            parsed.text,
            parsed.family,
            parsed.given,
            parsed.script,
            parsed.pinyin,
            parsed.family_pinyin,
            parsed.given_pinyin,
        ) == expected
    accented = normalise_name("Müller-Lüdenscheidt", ["José"])
    assert accented is not None
    assert accented.text == "jose mvller lvdenscheidt"
    assert accented.family_pinyin == "mvllerlvdenscheidt"


def test_latin_and_han_compare_through_family_and_given_pinyin() -> None:
    latin, han = normalise_name("Zhang", ["Wei"]), _name("张伟")
    assert latin is not None
    assert (latin.family_pinyin, latin.given_pinyin) == (han.family_pinyin, han.given_pinyin)
    lv = normalise_name("Lü", ["Bu"])
    assert lv is not None
    assert lv.family_pinyin == _name("吕布").family_pinyin == "lv"


def test_mixed_script() -> None:
    name = _name("张Wei")
    assert name.script == "mixed"
    assert name.pinyin == "zhangwei"


@pytest.mark.parametrize(
    "text",
    ["王丽之子", "王丽之女", "王丽之婴", "王丽婴", "王丽子", "王丽女", "王丽大宝", "王丽二宝", "王丽之子2"],
)
def test_newborn_placeholders_name_the_parent(text: str) -> None:
    name = _name(text)
    assert name.placeholder_of == "王丽"
    assert name.family == "王"
    assert name.text == text


def test_the_synthetic_newborn_shape() -> None:
    # The generator writes the mother's full name as family and 之子 as given.
    name = name_from_fhir(
        [{"use": "official", "text": "欧阳娜娜之女", "family": "欧阳娜娜", "given": ["之女"]}]
    )
    assert name is not None
    assert name.placeholder_of == "欧阳娜娜"
    assert name.family == "欧阳"


@pytest.mark.parametrize("text", ["王丽", "王子", "李女", "张三宝", "王小宝", "欧阳娜娜"])
def test_real_names_are_not_placeholders(text: str) -> None:
    assert _name(text).placeholder_of is None


@pytest.mark.parametrize("text", ["无名氏", "不详", "未知", "无名男2", "无名氏 3号", "Unknown"])
def test_unknown_names(text: str) -> None:
    name = _name(text)
    assert name.placeholder_of == ""
    assert name.script == "empty"
    assert (name.family, name.given, name.pinyin) == ("", "", "")


@pytest.mark.parametrize(
    ("family", "given", "text"), [(None, None, None), ("", [], ""), ("  ", ["·"], None), (None, None, "123")]
)
def test_nothing_usable_gives_none(family: str | None, given: list[str] | None, text: str | None) -> None:
    assert normalise_name(family, given, text) is None


def test_parts_with_nothing_usable_fall_back_to_the_text() -> None:
    assert normalise_name(" ", ["·"], "张伟") == _name("张伟")


def test_name_from_fhir_picks_by_use() -> None:
    names: list[dict[str, Any]] = [
        {"use": "old", "text": "王小丽"},
        {"use": "nickname", "text": "丽丽"},
        {"text": "王莉"},
        {"use": "usual", "family": "王", "given": ["丽华"]},
        {"use": "official", "family": "王", "given": ["丽"]},
    ]
    assert name_from_fhir(names) == _name("王丽")
    assert name_from_fhir(names[:4]) == _name("王丽华")
    assert name_from_fhir(names[:3]) == _name("王莉")
    assert name_from_fhir(names[:2]) == _name("丽丽")
    assert name_from_fhir(names[:1]) == _name("王小丽")  # old, but nothing else
    assert name_from_fhir([{"use": "anonymous", "text": "张三"}, {"use": "maiden", "text": "李四"}]) == _name(
        "李四"
    )


def test_name_from_fhir_skips_junk() -> None:
    assert name_from_fhir(None) is None
    assert name_from_fhir([]) is None
    assert name_from_fhir([{"use": "official", "text": "  "}, {"text": "赵六"}]) == _name("赵六")
    assert name_from_fhir([{"family": 3, "given": "钱七"}]) == normalise_name(None, ["钱七"])
