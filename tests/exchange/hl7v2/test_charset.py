"""Character sets of inbound messages: UTF-8, GBK / GB 18030 with and without MSH-18, the connection's setting."""

from __future__ import annotations

import pytest

from rhip.exchange.hl7v2.charset import UndecodableBytes, UnknownCharset, codec_of, decode, msh18_of, readable
from rhip.exchange.hl7v2.intake.decoding import CharsetRules, msh4_of
from rhip.exchange.hl7v2.message import parse


def message(msh18: str, name: str = "张三") -> str:
    return (
        f"MSH|^~\\&|卫宁HIS|510725H01|RHIP|RHIP|20250101||ADT^A04|1|P|2.5.1|||||CHN|{msh18}\r"
        f"PID|1||9^^^510725H01^MR||{name}\r"
    )


# A GBK character's second byte may be a delimiter: 乗 is 81 5C (\\), 亅 81 7C (|), 乛 81 5E (^), 亊 81 7E (~).
TRICKY = "乗亅乛亊"


@pytest.mark.parametrize("msh18", ["", "GB 18030-2000", "GBK", "GB18030"])
def test_gbk_bytes_decode_with_and_without_msh18(msh18: str) -> None:
    raw = message(msh18, TRICKY).encode("gb18030")
    assert all(pair in raw for pair in (b"\x81\x5c", b"\x81\x7c", b"\x81\x5e", b"\x81\x7e"))
    text, codec = decode(raw)
    assert codec in ("gb18030", "gbk")
    pid = parse(text).first("PID")
    assert pid is not None and pid.get(5) == TRICKY


def test_utf8_is_recognised_without_msh18() -> None:
    text, codec = decode(message("").encode())
    assert codec == "utf-8"
    assert "张三" in text


def test_a_byte_order_mark_is_dropped() -> None:
    text, _ = decode(b"\xef\xbb\xbf" + message("UNICODE UTF-8").encode())
    assert text.startswith("MSH")


def test_the_connection_setting_wins_when_the_bytes_fit() -> None:
    raw = message("").encode("gbk")
    assert decode(raw, "GBK") == (message(""), "gbk")
    # wrong setting for this message: detection takes over
    text, codec = decode(message("").encode(), "ascii")
    assert codec == "utf-8" and "张三" in text


def test_msh18_naming_the_charset_of_the_bytes() -> None:
    text = "MSH|^~\\&|LIS|H1|R|R|2025||ORU^R01|1|P|2.4|||||DEU|8859/1\rPID|1||9||Müller\r"
    assert decode(text.encode("latin-1")) == (text, "latin-1")


def test_utf8_bytes_under_a_wrong_msh18_stay_utf8() -> None:
    # A HIS configured for UTF-8 that still writes GBK in MSH-18: valid UTF-8 with Chinese characters is
    # almost never GBK text (GBK pairs are rarely valid UTF-8), so the bytes should win over the label.
    sent = "MSH|^~\\&|HIS|H1|R|R|2025||ADT^A04|1|P|2.5.1|||||CHN|GBK\rPID|1||9||张三\r"
    text, codec = decode(sent.encode("utf-8"))
    assert (text, codec) == (sent, "utf-8")


def test_undecodable_bytes_raise_instead_of_being_replaced() -> None:
    # Neither UTF-8 nor GB 18030: no guess with replacement characters, the message is refused.
    with pytest.raises(UndecodableBytes) as caught:
        decode(b"MSH|^~\\&|\xff\xfe\x80\x81|H1\r")
    assert isinstance(caught.value, UnknownCharset)


def test_invalid_utf8_under_msh18_utf8_is_refused_not_read_as_gb18030() -> None:
    # One bad byte in a UTF-8 message: as GB 18030 the bad byte would swallow the field separator after it.
    raw = message("UNICODE UTF-8").encode().replace("张三".encode(), b"\xe5\xbc|")
    assert raw.decode("gb18030")  # it would "decode"
    with pytest.raises(UndecodableBytes, match="the bytes are not valid UTF-8 as MSH-18 says"):
        decode(raw)
    with pytest.raises(UndecodableBytes):
        CharsetRules().decode(raw)


@pytest.mark.parametrize(
    "rules", [CharsetRules(default="UTF-8"), CharsetRules(by_sender={"10.0.0.9": "utf-8"})]
)
def test_invalid_utf8_under_a_configured_utf8_is_refused(rules: CharsetRules) -> None:
    raw = message("").encode().replace("张三".encode(), b"\xe5\xbc|")
    with pytest.raises(UndecodableBytes, match="not valid UTF-8"):
        rules.decode(raw, "10.0.0.9")
    with pytest.raises(UndecodableBytes):
        decode(raw, "UTF-8")
    # valid UTF-8 and GBK without MSH-18 still decode
    assert rules.decode(message("").encode(), "10.0.0.9") == (message(""), "utf-8")
    assert CharsetRules().decode(message("").encode("gbk")) == (message(""), "gb18030")


def test_readable_shows_what_cannot_be_decoded() -> None:
    assert readable(b"MSH|^~\\&|\xff|H1") == "MSH|^~\\&|\ufffd|H1"
    assert readable(message("").encode("gbk")) == message("")


def test_codec_names() -> None:
    assert codec_of("UNICODE UTF-8") == "utf-8"
    assert codec_of("gb 18030-2000") == "gb18030"
    assert codec_of("gbk") == "gbk"
    with pytest.raises(UnknownCharset) as caught:
        codec_of("EBCDIC")
    assert caught.value.code == "RHIP-V2-0002"


def test_msh18_and_msh4_without_parsing() -> None:
    assert msh18_of(message("GB 18030-2000~UNICODE UTF-8")) == "GB 18030-2000"
    assert msh18_of("MSH|^~\\&|A\r") == ""
    assert msh18_of("PID|1") == ""
    assert msh4_of(message("")) == "510725H01"
    assert msh4_of("MSH|^~\\&|A|B^C\r") == "B"
    assert msh4_of("PID|1|2|3") == ""


def test_rules_by_peer_by_facility_and_default() -> None:
    gbk = message("").encode("gbk")
    assert CharsetRules().decode(gbk)[1] == "gb18030"
    assert CharsetRules(by_sender={"10.0.0.7": "GBK"}).decode(gbk, "10.0.0.7")[1] == "gbk"
    assert CharsetRules(by_sender={"510725H01": "GBK"}).decode(gbk, "10.0.0.8")[1] == "gbk"
    assert CharsetRules(default="GBK").decode(gbk)[1] == "gbk"
    # the default is for messages without MSH-18: one that names its charset keeps it
    named = message("UNICODE UTF-8").encode()
    assert CharsetRules(default="GBK").decode(named) == (message("UNICODE UTF-8"), "utf-8")
    with pytest.raises(UnknownCharset):
        CharsetRules(by_sender={"10.0.0.7": "KOI8"}).decode(gbk, "10.0.0.7")
