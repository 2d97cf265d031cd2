"""Property-based fuzzing: malformed v2 input is a V2ParseError, a MappingError or an ACK, never anything else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.exchange.hl7v2.charset import UnknownCharset, decode
from rhip.exchange.hl7v2.mapping import MAPPERS, MappingContext, MappingError
from rhip.exchange.hl7v2.message import V2ParseError, parse
from rhip.exchange.hl7v2.pipeline import Inbound, V2Pipeline
from rhip.exchange.mllp.framing import FrameDecoder, wrap
from rhip.exchange.rejects import RejectStore

BASE = (
    "MSH|^~\\&|卫宁HIS|510725H01|RHIP|RHIP|20250308134800+0800||ADT^A01^ADT_A01|C1|P|2.5.1|||||CHN|UNICODE UTF-8\r"
    "EVN|A01|20250308134800+0800\r"
    "PID|1||M1^^^510725H01^MR~513701195012285032^^^&2.16.156.10011.1.3&ISO^NNCHN||张^三||19501228|M|||"
    "幸福路1号^^绵阳^四川^621000^CHN^H^^510703||13800000000^PRN^CP\r"
    "PV1|1|I|03^^^510725H01^^^^^内科||||0003^李^四^^^^^^510725H01||||||||||||ZY1^^^510725H01^VN"
    "||||||||||||||||||||510725H01|||||20250308134800+0800\r"
    "DG1|1||J18.9^肺炎^I10||20250308134800+0800|A\r"
    "OBX|1|NM|8302-2^身高^LN||170|cm^cm^UCUM|||||F\r"
)
ORU = (
    "MSH|^~\\&|LIS|510725H01|RHIP|RHIP|20250311161400+0800||ORU^R01^ORU_R01|L1|P|2.5.1\r"
    "PID|1||M1^^^510725H01^MR||张^三||19501228|M\r"
    "PV1|1|O|||||||||||||||||MZ1^^^510725H01^VN\r"
    "ORC|RE||JY1^510725H01\r"
    "OBR|1||JY1^510725H01|CBC^血常规^99LAB|||20250308134800+0800|||||||||||||||20250311161400+0800||LAB|F\r"
    "OBX|1|NM|6690-2^白细胞^LN||9.15|10*9/L^10\\S\\9/L^UCUM|3.5-9.5|N|||F|||20250308134800+0800\r"
)
DELIMITERS = list("|^~\\&\r\n")
CONTEXT = MappingContext("510725H01", "2025-03-08T05:48:00.000Z", ZoneInfo("Asia/Shanghai"))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A real message broken in one of the ways real senders break them."""
    text = draw(st.sampled_from([BASE, ORU, BASE.replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39")]))
    how = draw(st.sampled_from(["truncate", "insert", "delete", "replace", "huge", "delimiters", "segments"]))
    at = draw(st.integers(0, len(text)))
    if how == "truncate":
        return text[:at]
    if how == "insert":
        return text[:at] + draw(st.text(alphabet=DELIMITERS + list("AZ09 张"), max_size=8)) + text[at:]
    if how == "delete":
        return text[:at] + text[at + draw(st.integers(1, 30)) :]
    if how == "replace":
        return text[:at] + draw(st.text(max_size=12)) + text[at + 12 :]
    if how == "huge":
        return text[:at] + "x" * draw(st.integers(10_000, 200_000)) + text[at:]
    if how == "delimiters":
        return text.replace("|^~\\&", "|" + "".join(draw(st.permutations(list("^~\\&|")))[:4]), 1)
    segments = [s for s in text.split("\r") if s]
    picked = draw(st.lists(st.sampled_from(segments), max_size=8))
    return "\r".join(segments[:1] + picked) + "\r"


def _read(text: str) -> None:
    """Parse and map; only the errors that answer a sender may come out."""
    try:
        message = parse(text)
    except V2ParseError:
        return
    for segment in message:
        for n in range(segment.field_count() + 2):
            segment.get(n, 2, 2)
            segment.components(n)
    mapper = MAPPERS.get(message.message_type)
    if mapper is None:
        return
    with contextlib.suppress(MappingError):
        mapper(message, CONTEXT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_broken_messages_parse_and_map_or_fail_cleanly(text: str) -> None:
    _read(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300).map(lambda t: "MSH" + t))
def test_random_text_after_msh(text: str) -> None:
    _read(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_decode(raw: bytes) -> None:
    try:
        text, _ = decode(b"MSH|^~\\&|" + raw)
    except UnknownCharset:
        return
    _read(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8), st.integers(1, 50))
def test_framing_never_loses_or_invents_bytes(payloads: list[bytes], chunk: int) -> None:
    clean = [p.replace(b"\x0b", b"").replace(b"\x1c", b"") for p in payloads]
    stream = b"".join(wrap(p) for p in clean)
    decoder = FrameDecoder(1 << 20)
    frames = []
    for start in range(0, len(stream), chunk):
        frames += decoder.feed(stream[start : start + chunk])
    assert [f.data for f in frames] == clean


@pytest.fixture(scope="module")
def fuzz_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    settings_ = Settings(database_url=f"sqlite:///{folder}/rhip.db", log_format="text")  # type: ignore[call-arg]
    db = database(settings_)
    upgrade(db.engine)
    db.dispose()
    platform = build_platform(settings_, empi=False)
    try:
        yield platform
    finally:
        platform.close()


def test_the_pipeline_answers_whatever_arrives(fuzz_platform: Platform) -> None:
    pipeline = V2Pipeline(fuzz_platform.fhir, RejectStore(fuzz_platform.db))
    codecs = ["utf-8", "gb18030", "latin-1"]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(
            st.one_of(
                mutated().map(lambda t: t.encode("utf-8")),
                st.binary(max_size=200),
                st.sampled_from(codecs).flatmap(
                    lambda c: mutated().map(lambda t, c=c: t.encode(c, errors="replace"))
                ),
            ),
            min_size=1,
            max_size=6,
        ),
        st.sampled_from(["", "", "oversized", "unterminated"]),
    )
    def batch(raws: list[bytes], problem: str) -> None:
        items = [Inbound(raw, frame_problem=problem if i == 0 else "") for i, raw in enumerate(raws)]
        answers = pipeline.process(items)
        assert len(answers) == len(items)
        for answer in answers:
            assert answer.code in ("AA", "AE", "AR")
            assert answer.ack.startswith(b"MSH") and b"\rMSA" in answer.ack
            assert answer.error_code != "RHIP-V2-0056", answer.reason  # no internal error

    batch()
