"""Acknowledgements: the header answering the sender, MSA, ERR by version, charset, determinism."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from rhip.exchange.hl7v2.ack import AckError, Header, ack_control_id, build_ack, version_tuple
from rhip.exchange.hl7v2.message import parse

ZONE = ZoneInfo("Asia/Shanghai")
AT = datetime(2025, 3, 8, 5, 48, 0, tzinfo=UTC)


def msg(version: str = "2.5.1", msh18: str = "", delimiters: str = "|^~\\&") -> str:
    fs = delimiters[0]
    fields = [
        "MSH",
        delimiters[1:],
        "HIS^2.16.1^ISO",
        "510725H01",
        "RHIP",
        "RHIP",
        "20250308",
        "",
        f"ADT{delimiters[1]}A04{delimiters[1]}ADT_A01",
        "MSG001",
        "P",
        version,
    ]
    if msh18:
        fields += ["", "", "", "", "", msh18]
    return fs.join(fields) + "\rPID" + fs + "1\r"


def lines(ack: bytes, codec: str = "utf-8") -> list[list[str]]:
    return [line.split("|") for line in ack.decode(codec).split("\r") if line]


def test_an_aa_answers_the_sender() -> None:
    ack = build_ack("AA", Header.of(parse(msg())), at=AT, zone=ZONE)
    msh, msa = lines(ack)
    assert msh[:6] == ["MSH", "^~\\&", "RHIP", "RHIP", "HIS^2.16.1^ISO", "510725H01"]
    assert msh[6] == "20250308134800+0800"
    assert msh[8] == "ACK^A04^ACK"
    assert msh[9] == ack_control_id(Header.of(parse(msg()))) and len(msh[9]) == 20
    assert msh[10:12] == ["P", "2.5.1"]
    assert msa == ["MSA", "AA", "MSG001"]
    assert ack.endswith(b"\r")
    parsed = parse(ack.decode())
    assert parsed.message_type == "ACK^A04"


def test_the_same_message_and_moment_give_the_same_bytes() -> None:
    one = build_ack("AA", Header.of(parse(msg())), at=AT, zone=ZONE)
    two = build_ack("AA", Header.of(parse(msg())), at=AT, zone=ZONE)
    assert one == two
    other = build_ack("AA", Header.of(parse(msg().replace("MSG001", "MSG002"))), at=AT, zone=ZONE)
    assert lines(other)[0][9] != lines(one)[0][9]


def test_an_ae_in_25_names_the_field_in_err2() -> None:
    error = AckError(
        "101",
        "PID-3 (患者标识) is required | empty",
        segment="PID",
        sequence=1,
        field=3,
        component=1,
        rhip_code="RHIP-V2-0011",
    )
    ack = build_ack("AE", Header.of(parse(msg())), at=AT, zone=ZONE, error=error)
    _, msa, err = (line.split("|") for line in ack.decode().split("\r") if line)
    assert msa == ["MSA", "AE", "MSG001"]
    assert err[0] == "ERR" and err[1] == ""
    assert err[2] == "PID^1^3^1^1"
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert err[5] == "RHIP-V2-0011^^99RHIP"
    assert err[8] == "PID-3 (患者标识) is required \\F\\ empty"
    assert parse(ack.decode()).first("ERR").get(8) == "PID-3 (患者标识) is required | empty"  # type: ignore[union-attr]


def test_an_error_without_a_location_leaves_err2_empty() -> None:
    ack = build_ack("AR", Header.of(parse(msg())), at=AT, zone=ZONE, error=AckError("207", "boom"))
    err = lines(ack)[2]
    assert err[2] == "" and err[3] == "207^Application internal error^HL70357"


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4"])
def test_before_25_the_error_goes_in_err1_and_msa3(version: str) -> None:
    error = AckError("102", "PV1-44: not a date", segment="PV1", sequence=1, field=44)
    ack = build_ack("AE", Header.of(parse(msg(version))), at=AT, zone=ZONE, error=error)
    msh, msa, err = lines(ack)
    assert msh[8] == ("ACK^A04" if version == "2.3" else "ACK^A04^ACK")
    assert msa == ["MSA", "AE", "MSG001", "PV1-44: not a date"]
    assert err == ["ERR", "PV1^1^44^102&Data type error&HL70357"]


def test_a_gbk_message_gets_a_gbk_answer_with_its_msh18() -> None:
    text = msg(msh18="GB 18030-2000").replace("HIS^2.16.1^ISO", "卫宁HIS")
    error = AckError("103", "性别代码不在值域内", segment="PID", sequence=1, field=8)
    ack = build_ack("AE", Header.of(parse(text)), at=AT, zone=ZONE, codec="gb18030", error=error)
    decoded = ack.decode("gb18030")
    assert "卫宁HIS" in decoded and "性别代码不在值域内" in decoded
    assert decoded.split("\r")[0].endswith("|GB 18030-2000")
    with pytest.raises(UnicodeDecodeError):
        ack.decode("utf-8")


def test_the_answer_uses_the_message_delimiters() -> None:
    text = msg(delimiters="#$%!@")
    ack = build_ack("AE", Header.of(parse(text)), at=AT, zone=ZONE, error=AckError("101", "a#b", "PID", 1, 3))
    first, msa, err = ack.decode().split("\r")[:3]
    assert first.startswith("MSH#$%!@#RHIP#RHIP#HIS")
    assert msa == "MSA#AE#MSG001"
    assert err.split("#")[2] == "PID$1$3$1" and err.endswith("#a!F!b")


def test_salvage_reads_what_it_can_from_a_broken_message() -> None:
    header = Header.salvage("junk\rMSH|^~\\&|HIS|H1|R|R|2025||ORU^R01|X9|P|2.4\rP I D|broken")
    assert (header.facility_code, header.control_id, header.trigger, header.version) == (
        "H1",
        "X9",
        "R01",
        "2.4",
    )
    assert Header.salvage("no header at all") == Header()
    assert Header.salvage("MSH|^^^^|A") == Header()
    ack = build_ack("AR", Header(), at=AT, zone=ZONE, error=AckError("100", "not HL7"), raw=b"xyz")
    msh, msa, _ = lines(ack)
    assert msh[4:6] == ["", ""] and msa == ["MSA", "AR", ""]
    assert msh[9] == ack_control_id(Header(), b"xyz") != ack_control_id(Header(), b"xy")


def test_salvage_of_a_short_msh_line_is_an_empty_header() -> None:
    # The text is long enough, the MSH line is not: no IndexError.
    assert Header.salvage("MSH\r12345678") == Header()
    assert Header.salvage("MSH|^~\r\\&|HIS|H1") == Header()
    assert Header.salvage("xxMSH\n|^~\\&|HIS") == Header()


def test_salvage_does_not_echo_bytes_that_were_not_text() -> None:
    header = Header.salvage("MSH|^~\\&|\ufffd\ufffdHIS|H1|R|R|2025||ADT^A04|C7|P|2.5\r")
    assert (header.sending_application, header.facility_code, header.control_id) == ("", "H1", "C7")


def test_versions() -> None:
    assert version_tuple("2.5.1") == (2, 5, 1)
    assert version_tuple("2.3^CHN") == (2, 3)
    assert version_tuple("") == (2, 5)
    assert version_tuple("x") == (2, 5)
    with pytest.raises(ValueError):
        build_ack("AX", Header(), at=AT, zone=ZONE)
