"""Replaying a reject (``rhip.bootstrap.replay``): security refusals stay refused whatever code their door
gave them, and a reject is replayed once however many operators press the button at the same time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from exchange.hl7v3.helpers import FixedClock, counter_uuids  # tests/ is on sys.path
from rhip.bootstrap import replay
from rhip.bootstrap.container import Platform, database
from rhip.bootstrap.replay import ReplayNotAllowed, dismiss_reject, replay_reject, replayable
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.exchange.hl7v3.service import V3Service
from rhip.exchange.rejects import Rejected, RejectStore
from rhip.fhir.rest.messages import FhirRequest, FhirResponse

V3_GOLDEN = Path(__file__).resolve().parents[2] / "exchange" / "hl7v3" / "golden"
FOREIGN = "RHIP-SEC-0002: Access denied: meta.source names another institution"


@pytest.fixture
def store(settings: Settings) -> Iterator[RejectStore]:
    db = database(settings)
    upgrade(db.engine)
    try:
        yield RejectStore(db)
    finally:
        db.dispose()


def platform_of(store: RejectStore) -> Platform:
    """Just enough of a platform for replay's bookkeeping (no exchange doors: replayers are swapped in)."""
    return cast(Platform, SimpleNamespace(exchange=None, db=store.db))


def kept(store: RejectStore, *, channel: str = "hl7v3", code: str = "RHIP-V3-0016", reason: str = "x") -> int:
    return store.record(channel=channel, sender="510704104X01", raw=b"<x/>", reason_code=code, reason=reason)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("RHIP-V3-0016", FOREIGN),  # the v3 door wrapped the store's 403 in StoreRefused
        ("RHIP-V3-0016", "refused: rhip-sec-0001: no valid credentials"),
        ("RHIP-SEC-0002", "Access denied"),
        ("rhip-sec-0002", "Access denied"),
        ("RHIP-V2-0061", "not authorised"),
    ],
)
def test_security_refusals_are_not_replayable(store: RejectStore, code: str, reason: str) -> None:
    rid = kept(store, code=code, reason=reason)
    assert replayable(store.get(rid)) is not None
    with pytest.raises(ReplayNotAllowed):
        replay_reject(platform_of(store), rid, "test")
    assert store.get(rid).status == "open"


def test_an_ordinary_refusal_is_replayable(store: RejectStore) -> None:
    assert replayable(store.get(kept(store, code="RHIP-V3-0011", reason="a bad value"))) is None


class Forbidding:
    """A FHIR service that refuses every request as the security layer does a foreign institution's."""

    def handle(self, req: FhirRequest) -> FhirResponse:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "forbidden",
                    "diagnostics": "Access denied: meta.source names another institution",
                    "details": {"text": "RHIP-SEC-0002"},
                }
            ],
        }
        return FhirResponse(403, orjson.dumps(outcome))


def test_the_v3_door_keeps_a_store_security_refusal_under_its_security_code(store: RejectStore) -> None:
    service = V3Service(Forbidding(), rejects=store, clock=FixedClock(), new_uuid=counter_uuids())
    register = (V3_GOLDEN / "07-person-register.request.xml").read_bytes()
    answer = service.handle(register, "application/xml")
    assert answer.ack_code != "AA" and answer.reject_id is not None
    reject = store.get(answer.reject_id)
    assert reject.reason_code == "RHIP-SEC-0002", reject.reason_code  # was RHIP-V3-0016
    assert replayable(reject) is not None
    with pytest.raises(ReplayNotAllowed):
        replay_reject(platform_of(store), reject.id, "test")


def test_a_reject_is_replayed_once(store: RejectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = platform_of(store)
    rid = kept(store, channel="cda")
    runs: list[int] = []
    second: list[BaseException] = []

    def replayer(plat: Any, st: RejectStore, reject: Rejected, note: str) -> tuple[bool, str]:
        runs.append(reject.id)
        # another administrator presses the button while this replay runs
        try:
            replay_reject(platform, rid, "the other")
        except ReplayNotAllowed as exc:
            second.append(exc)
        st.resolve(reject.id, status="replayed", note=note)
        return True, "stored"

    monkeypatch.setitem(replay._REPLAYERS, "cda", replayer)
    result = replay_reject(platform, rid, "the first")
    assert result.accepted and runs == [rid] and len(second) == 1
    assert store.get(rid).status == "replayed" and store.get(rid).note == "the first"
    with pytest.raises(ReplayNotAllowed):
        replay_reject(platform, rid, "again")  # and after it, as before
    assert runs == [rid]


def test_a_refused_or_failed_replay_leaves_the_reject_open(
    store: RejectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = platform_of(store)
    rid = kept(store, channel="cda")

    def refused(plat: Any, st: RejectStore, reject: Rejected, note: str) -> tuple[bool, str]:
        assert st.get(reject.id).status != "open"  # claimed while it runs: no one else may start it
        return False, "AE"

    def failing(plat: Any, st: RejectStore, reject: Rejected, note: str) -> tuple[bool, str]:
        raise RuntimeError("the door failed")

    monkeypatch.setitem(replay._REPLAYERS, "cda", refused)
    assert not replay_reject(platform, rid, "try").accepted
    assert store.get(rid).status == "open" and store.get(rid).note == ""
    monkeypatch.setitem(replay._REPLAYERS, "cda", failing)
    with pytest.raises(RuntimeError):
        replay_reject(platform, rid, "try")
    assert store.get(rid).status == "open" and store.get(rid).resolved_us is None
    dismiss_reject(platform, rid, "resent")
    assert store.get(rid).status == "dismissed"
    with pytest.raises(ReplayNotAllowed):
        dismiss_reject(platform, rid, "twice")
