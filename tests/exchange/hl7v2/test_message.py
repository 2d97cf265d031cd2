"""The tolerant v2 parser: positions as the standard numbers them, escapes, real-world separators, errors."""

from __future__ import annotations

import pytest

from rhip.exchange.hl7v2.message import DEFAULT_DELIMITERS, Delimiters, V2ParseError, escape, parse, unescape

ADT = (
    "MSH|^~\\&|HIS^1.2.3^ISO|510725H01^医院|RHIP|RHIP|20250308134800+0800||ADT^A01^ADT_A01|C0001|P|2.5.1"
    "|||||CHN|UNICODE UTF-8\r"
    "EVN|A01|20250308134800+0800\r"
    "PID|1||H01^^^510725H01^MR~513701195012285032^^^&2.16.156.10011.1.3&ISO^NNCHN||张^三||19501228|M\r"
    "PV1|1|I|03^^^510725H01\r"
    "OBX|1|ST|X^a\\S\\b||line1\\.br\\line2\\F\\x\\E\\y||||||F\r"
    "OBX|2|NM|Y||1.5\r"
)


def test_header_fields_are_numbered_as_the_standard_numbers_them() -> None:
    m = parse(ADT)
    assert m.msh.raw(1) == "|" and m.msh.raw(2) == "^~\\&"
    assert (m.message_code, m.trigger, m.structure) == ("ADT", "A01", "ADT_A01")
    assert m.message_type == "ADT^A01"
    assert (m.control_id, m.version, m.processing_id) == ("C0001", "2.5.1", "P")
    assert (m.sending_application, m.sending_facility, m.charset) == ("HIS", "510725H01", "UNICODE UTF-8")
    assert m.msh.get(4, 2) == "医院"
    assert m.accept_ack_type == ""


def test_repetitions_components_and_subcomponents() -> None:
    pid = parse(ADT).first("PID")
    assert pid is not None and pid.sequence == 3
    assert len(pid.repetitions(3)) == 2
    assert pid.get(3, 1, repetition=1) == "513701195012285032"
    assert pid.get(3, 4, 2, repetition=1) == "2.16.156.10011.1.3"
    assert pid.get(3, 4, 1, repetition=1) == ""
    assert pid.get(3, 5, repetition=1) == "NNCHN"
    assert pid.components(5) == ["张", "三"]
    assert pid.get(3, 9) == "" and pid.get(99) == "" and pid.get(3, repetition=5) == ""
    assert pid.field_count() == 8


def test_escapes_are_resolved_when_values_are_read() -> None:
    obx = parse(ADT).all("OBX")[0]
    assert obx.get(3, 2) == "a^b"
    assert obx.get(5) == "line1\nline2|x\\y"
    assert obx.raw(5) == "line1\\.br\\line2\\F\\x\\E\\y"


def test_first_and_all_find_segments_in_order() -> None:
    m = parse(ADT)
    assert [s.get(1) for s in m.all("OBX")] == ["1", "2"]
    assert m.first("NK1") is None
    assert [s.name for s in m] == ["MSH", "EVN", "PID", "PV1", "OBX", "OBX"]


@pytest.mark.parametrize("separator", ["\n", "\r\n", "\r\r", "\r\n\r\n"])
def test_any_segment_separator_and_blank_lines(separator: str) -> None:
    m = parse("\ufeff" + ADT.replace("\r", separator))
    assert [s.name for s in m] == ["MSH", "EVN", "PID", "PV1", "OBX", "OBX"]
    assert m.first("PID") is not None


def test_other_delimiters_are_read_from_msh() -> None:
    m = parse("MSH#$%!@#HIS#H1#R#R#2025##ADT$A04#9#P#2.4\rPID#1##7$$$H1$MR%8##A!T!B$C@D\r")
    assert m.delimiters == Delimiters("#", "$", "%", "!", "@")
    pid = m.first("PID")
    assert pid is not None
    assert pid.get(3, 1, repetition=1) == "8"
    assert pid.get(5, 1) == "A@B"  # !T! is the escape of the subcomponent separator, here @
    assert pid.get(5, 2, 2) == "D"


def test_default_delimiters_are_shared() -> None:
    assert parse(ADT).delimiters is DEFAULT_DELIMITERS


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("PID|1\r", 0),
        ("", 0),
        ("MSH|^~\r", 0),
        ("MSH|^^\\&|A|B\r", 2),
        ("MSHA^~\\&|A\r", 2),
        ("MSH|^~\\&|A|B|C|D|2025||^A01|1|P|2.5\r", 9),
        ("MSH|^~\\&|A|B|C|D|2025||ADT^A01||P|2.5\r", 10),
    ],
)
def test_what_is_not_a_message_is_refused_naming_the_field(text: str, field: int) -> None:
    with pytest.raises(V2ParseError) as caught:
        parse(text)
    assert caught.value.code == "RHIP-V2-0001"
    assert caught.value.field == field


def test_a_bad_segment_name_is_refused_with_its_position() -> None:
    with pytest.raises(V2ParseError) as caught:
        parse("MSH|^~\\&|A|B|C|D|2025||ADT^A01|1|P|2.5\rPID|1\rpv1|x\r")
    assert caught.value.sequence == 3


@pytest.mark.parametrize(
    "value", ["plain", "a|b", "x^y~z&w", "c:\\dir\\f", "two\nlines", "", "\\F\\ literally"]
)
def test_escape_then_unescape_gives_the_value_back(value: str) -> None:
    for d in (DEFAULT_DELIMITERS, Delimiters("#", "$", "%", "!", "@")):
        assert unescape(escape(value, d), d) == value


def test_unescape_of_hex_and_formatting_sequences() -> None:
    d = DEFAULT_DELIMITERS
    assert unescape("\\X41\\B", d) == "AB"
    assert unescape("\\H\\bold\\N\\", d) == "bold"
    assert unescape("no end \\F", d) == "no end \\F"
    assert unescape("\\Q\\", d) == "\\Q\\"  # unknown sequences are kept as sent
