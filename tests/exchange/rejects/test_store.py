"""The rejects store keeps refused input with its bytes, answers retransmissions and resolves entries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rhip.bootstrap.container import database
from rhip.bootstrap.settings import Settings
from rhip.core.errors import InvalidRequest, ResourceNotFound
from rhip.db.migrate import upgrade
from rhip.exchange.rejects import RejectStore


@pytest.fixture
def store(settings: Settings) -> Iterator[RejectStore]:
    db = database(settings)
    upgrade(db.engine)
    try:
        yield RejectStore(db)
    finally:
        db.dispose()


RAW = "MSH|^~\\&|HIS|510725H01|RHIP|RHIP|20250101||ADT^A01|C1|P|2.5.1\rPID|1||\r".encode("gb18030")


def test_record_and_read_back_the_bytes(store: RejectStore) -> None:
    rid = store.record(
        channel="mllp",
        sender="510725H01",
        raw=RAW,
        reason_code="RHIP-V2-0010",
        reason="PID-3 missing",
        control_id="C1",
        content_type="x-application/hl7-v2+er7",
        ack=b"MSA|AE|C1",
    )
    got = store.get(rid)
    assert got.raw == RAW
    assert (got.channel, got.sender, got.control_id, got.status) == ("mllp", "510725H01", "C1", "open")
    assert got.ack == b"MSA|AE|C1"
    listed = store.list()
    assert [r.id for r in listed] == [rid]
    assert listed[0].raw == b""  # lists leave the bytes out unless asked
    assert store.list(with_raw=True)[0].raw == RAW
    assert store.open_counts() == {"mllp": 1}


def test_a_retransmission_finds_the_answer_until_resolved(store: RejectStore) -> None:
    assert store.find_ack("mllp", "510725H01", "C1") is None
    rid = store.record(
        channel="mllp",
        sender="510725H01",
        raw=RAW,
        reason_code="X",
        reason="r",
        control_id="C1",
        ack=b"first",
    )
    store.record(
        channel="mllp",
        sender="510725H01",
        raw=RAW,
        reason_code="X",
        reason="r",
        control_id="C1",
        ack=b"second",
    )
    assert store.find_ack("mllp", "510725H01", "C1") == b"second"
    assert store.find_ack("mllp", "other", "C1") is None
    assert store.find_ack("hl7v3", "510725H01", "C1") is None
    store.resolve(rid, status="replayed", note="fixed PID-3")
    assert store.get(rid).status == "replayed"
    assert store.get(rid).resolved_us is not None
    assert [r.id for r in store.list(status="replayed")] == [rid]
    assert len(store.list(status=None)) == 2


def test_filters_and_errors(store: RejectStore) -> None:
    store.record(channel="cda", sender="510704101X01", raw=b"<x/>", reason_code="RHIP-CDA-0001", reason="r")
    store.record(channel="mllp", sender="510725H01", raw=RAW, reason_code="RHIP-V2-0001", reason="r")
    assert [r.channel for r in store.list(channel="cda")] == ["cda"]
    assert store.list(since_us=2**62) == []
    with pytest.raises(ResourceNotFound):
        store.get(999)
    with pytest.raises(ResourceNotFound):
        store.resolve(999, status="dismissed")
    with pytest.raises(InvalidRequest):
        store.resolve(1, status="open")
    with pytest.raises(InvalidRequest):
        store.list(status="lost")
    with pytest.raises(ValueError, match="channel"):
        store.record(channel="fax", sender="x", raw=b"", reason_code="X", reason="r")
