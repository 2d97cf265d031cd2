"""Traditional -> simplified, pinyin, and the surname table's data file."""

from __future__ import annotations

import pytest
from pypinyin import Style, pinyin

from rhip.empi.normalize.chinese import to_simplified
from rhip.empi.normalize.names import pinyin_of
from rhip.empi.normalize.surnames import split_han_name, surname_pinyin, surname_table

NAME_CHARACTERS = {
    "張": "张", "陳": "陈", "劉": "刘", "黃": "黄", "吳": "吴", "趙": "赵", "鄭": "郑", "馮": "冯", "蔣": "蒋",
    "許": "许", "鄧": "邓", "蕭": "萧", "葉": "叶", "賈": "贾", "盧": "卢", "譚": "谭", "範": "范", "龔": "龚",
    "閻": "阎", "錢": "钱", "鍾": "钟", "羅": "罗", "馬": "马", "楊": "杨", "孫": "孙", "韓": "韩", "麗": "丽",
    "華": "华", "偉": "伟", "東": "东", "軍": "军", "強": "强", "國": "国", "慶": "庆", "鳳": "凤", "蘭": "兰",
    "紅": "红", "龍": "龙", "輝": "辉", "傑": "杰", "濤": "涛", "萬": "万",
}  # fmt: skip


@pytest.mark.parametrize(("traditional", "simplified"), NAME_CHARACTERS.items())
def test_traditional_name_characters_are_simplified(traditional: str, simplified: str) -> None:
    assert to_simplified(traditional) == simplified


def test_the_table_covers_the_commonly_used_traditional_characters() -> None:
    # The commonly used traditional characters number about 2,500; the table has every OpenCC entry.
    from rhip.empi.normalize.chinese import _t2s_table

    table, _ = _t2s_table()
    assert len(table) >= 2500


def test_simplified_text_and_ascii_are_unchanged() -> None:
    for text in ("周薛王丽", "四川省绵阳市涪城区", "Zhang Wei 12", ""):
        assert to_simplified(text) == text
    # Characters that are also standard simplified ones (乾 in names, 於 as a surname) are kept.
    assert to_simplified("張乾於") == "张乾於"
    assert to_simplified("臺灣省台北市") == "台湾省台北市"


def test_pinyin_of() -> None:
    assert pinyin_of("张伟") == "zhangwei"
    assert pinyin_of("吕绿") == "lvlv"  # ü as v
    assert pinyin_of("女") == "nv"
    assert pinyin_of("张Wei-2伟") == "zhangweiwei"  # ASCII letters kept lower-case, the rest dropped
    assert pinyin_of("") == ""
    assert pinyin_of("123") == ""


def test_surname_table_has_the_compound_surnames() -> None:
    table = surname_table()
    wanted = "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 西门 百里 呼延"
    assert set(wanted.split()) <= table.always
    assert len(table.always | table.long_names_only) >= 40
    assert all(len(s) == 2 for s in table.always | table.long_names_only)
    assert not table.always & table.long_names_only


# Readings the table marks '# unverified' because pypinyin's dictionary does not list them.
NOT_IN_PYPINYIN = {"黑"}


def test_every_surname_reading_is_a_reading_of_its_characters() -> None:
    for surname, reading in surname_table().readings.items():
        if surname in NOT_IN_PYPINYIN:
            continue
        options = [set(p) for p in pinyin(surname, style=Style.NORMAL, heteronym=True)]
        # Split the reading into one syllable per character by trying each character's readings.
        rest = reading
        for choices in options:
            syllable = next((c for c in sorted(choices, key=len, reverse=True) if rest.startswith(c)), None)
            assert syllable is not None, (surname, reading)
            rest = rest[len(syllable) :]
        assert rest == "", (surname, reading)


def test_split_and_read_surnames() -> None:
    assert split_han_name("万俟卨") == ("万俟", "卨")
    assert surname_pinyin("万俟") == "moqi"
    assert surname_pinyin("单") == "shan"
    assert surname_pinyin("张单") == "zhangshan"  # a double surname: each character as a surname
    assert surname_pinyin("王") == "wang"
