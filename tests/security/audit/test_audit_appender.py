"""The audit appender process: a server's batches of reads are built and chained outside it, and nothing is
lost or written twice when the appender fails to start, dies, or may have written a batch it did not
confirm."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from rhip.core.frames import HEADER, read_frame, write_frame
from rhip.db.engine import Database
from rhip.security.audit.appender import ProcessAppender, serve
from rhip.security.audit.batches import Access, AppendFailed, Wire, to_wire, write_batch
from rhip.security.audit.trail import AuditConfig, AuditTrail

from .support import clinician


def logged(db: Database) -> list[str]:
    with db.read() as conn:
        return [str(r[0]) for r in conn.execute(text("SELECT patients FROM audit_log ORDER BY seq"))]


def read(trail: AuditTrail, patient: str) -> None:
    trail.accessed(
        clinician(), action="R", subtype="read", resources=[("Patient", patient, 1)], patients=[patient]
    )


def access(patient: str) -> Access:
    return Access(
        clinician(), "R", "read", (("Patient", patient, 1),), (patient,), "0", None, None, 1_000_000
    )


def options(url: str) -> dict[str, Any]:
    return {"database": {"url": url}, "observer": "rhip", "algorithm": "sm3", "log_level": "WARNING"}


@pytest.fixture
def appended(db: Database, database_url: str) -> Iterator[Callable[..., tuple[AuditTrail, ProcessAppender]]]:
    made: list[AuditTrail] = []

    def build(**kwargs: Any) -> tuple[AuditTrail, ProcessAppender]:
        appender = ProcessAppender(options(database_url), **kwargs)
        trail = AuditTrail(db, AuditConfig(flush_ms=60_000), appender=appender)
        made.append(trail)
        return trail, appender

    yield build
    for trail in made:
        trail.close()


def serving_process_must_not_write(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the serving process wrote a batch the appender should have written")

    monkeypatch.setattr("rhip.security.audit.trail.write_batch", refuse)


def test_batches_are_built_and_chained_by_the_appender_process(
    appended: Callable[..., tuple[AuditTrail, ProcessAppender]],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serving_process_must_not_write(monkeypatch)
    trail, appender = appended()
    for k in range(30):
        read(trail, f"p{k}")
    trail.flush()
    assert logged(db) == [f"p{k}" for k in range(30)]
    pid = appender.pid
    assert pid is not None and pid != os.getpid()
    read(trail, "p30")
    trail.flush()
    assert appender.pid == pid  # one appender serves batch after batch
    assert trail.verify().ok
    trail.close()
    assert appender.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # it ended with the pipe


def test_an_appender_that_died_is_replaced_and_nothing_is_lost(
    appended: Callable[..., tuple[AuditTrail, ProcessAppender]],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serving_process_must_not_write(monkeypatch)
    trail, appender = appended()
    read(trail, "a")
    trail.flush()
    first = appender.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # the next batch finds it gone
    read(trail, "b")
    trail.flush()
    assert logged(db) == ["a", "b"]
    assert appender.pid not in (None, first)
    assert trail.verify().ok


def test_a_batch_the_appender_may_have_written_is_not_written_twice(db: Database) -> None:
    class CommitsThenLosesTheAnswer:
        """Writes each batch, then fails as if its answer had been lost on the way back."""

        def append(self, batch: Sequence[Wire], *, retry: bool) -> None:
            write_batch(db, batch, observer="rhip", algorithm="sm3", retry=retry)
            raise AppendFailed("no answer", uncertain=True)

        def close(self) -> None:
            pass

    trail = AuditTrail(db, AuditConfig(flush_ms=60_000), appender=CommitsThenLosesTheAnswer())
    try:
        for patient in ("a", "b", "c"):
            read(trail, patient)
        trail.flush()
    finally:
        trail.close()
    assert logged(db) == ["a", "b", "c"]
    assert trail.verify().ok


def test_when_the_appender_cannot_start_the_trail_writes_itself(
    appended: Callable[..., tuple[AuditTrail, ProcessAppender]], db: Database, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    never = [sys.executable, "-c", f"open({str(starts)!r}, 'a').write('x')"]
    trail, appender = appended(command=never, start_timeout_s=5, restart_after_s=60)
    read(trail, "a")
    trail.flush()
    read(trail, "b")
    trail.flush()
    assert logged(db) == ["a", "b"]
    assert starts.read_text() == "x"  # not started again for every batch while it keeps failing
    assert appender.pid is None


def test_a_closed_appender_takes_no_batch(
    appended: Callable[..., tuple[AuditTrail, ProcessAppender]],
) -> None:
    _trail, appender = appended()
    appender.close()
    with pytest.raises(AppendFailed) as failed:
        appender.append([], retry=False)
    assert not failed.value.uncertain


def test_the_appender_loop_answers_every_request_and_stops_at_garbage(
    db: Database, database_url: str
) -> None:
    """``serve`` as the appender runs it, over pipes in this process."""
    child_in, parent_out = os.pipe()
    parent_in, child_out = os.pipe()
    ended: list[int] = []
    loop = threading.Thread(target=lambda: ended.append(serve(child_in, child_out)))
    loop.start()
    try:
        write_frame(parent_out, options(database_url))
        assert read_frame(parent_in, timeout_s=30)[0] == "ready"
        write_frame(parent_out, ("compact", False, []))
        assert read_frame(parent_in, timeout_s=30)[0] == "error"  # not a request it knows
        wire = to_wire([access("p1")])
        write_frame(parent_out, ("append", False, wire))
        assert read_frame(parent_in, timeout_s=30) == ("ok", 1)
        write_frame(parent_out, ("append", True, wire))
        assert read_frame(parent_in, timeout_s=30) == ("ok", 0)  # sent again: already in the log
        data = pickle.dumps(("append", False, [Fraction(1, 2)]))
        os.write(parent_out, HEADER.pack(len(data)) + data)  # a class: refused, and the loop ends
        loop.join(30)
        assert not loop.is_alive() and ended == [0]
        assert logged(db) == ["p1"]
    finally:
        os.close(parent_out)
        loop.join(30)
        for fd in (child_in, parent_in, child_out):
            os.close(fd)


def test_a_database_failure_is_answered_and_the_loop_goes_on(tmp_path: Path) -> None:
    unmigrated = f"sqlite:///{tmp_path}/empty.db"
    child_in, parent_out = os.pipe()
    parent_in, child_out = os.pipe()
    loop = threading.Thread(target=serve, args=(child_in, child_out))
    loop.start()
    try:
        write_frame(parent_out, options(unmigrated))
        assert read_frame(parent_in, timeout_s=30)[0] == "ready"
        write_frame(parent_out, ("append", False, to_wire([access("p1")])))
        status, detail = read_frame(parent_in, timeout_s=30)
        assert status == "error" and detail == "OperationalError"  # no audit table: nothing written
        write_frame(parent_out, ("compact", False, []))
        assert read_frame(parent_in, timeout_s=30)[0] == "error"  # still answering
    finally:
        os.close(parent_out)  # end of file: the loop ends
        loop.join(30)
        for fd in (child_in, parent_in, child_out):
            os.close(fd)
    assert not loop.is_alive()


DIES_AFTER_READING = (
    "import os, sys\n"
    "from rhip.core.frames import read_frame, write_frame\n"
    "read_frame(0)\n"
    "write_frame(1, ('ready', os.getpid()))\n"
    "read_frame(0)\n"
    "sys.exit(1)\n"
)


def test_when_appenders_die_holding_a_batch_it_is_written_here_skipping_what_they_wrote(
    appended: Callable[..., tuple[AuditTrail, ProcessAppender]],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[bool] = []

    def recording(*args: Any, retry: bool = False, **kwargs: Any) -> int:
        written.append(retry)
        return write_batch(*args, retry=retry, **kwargs)

    monkeypatch.setattr("rhip.security.audit.trail.write_batch", recording)
    trail, _ = appended(command=[sys.executable, "-c", DIES_AFTER_READING])
    read(trail, "a")
    trail.flush()
    # Two appenders read the batch and died unanswered (the first one replaced once): either may have
    # committed it, so the server writes it skipping logged entries.
    assert written == [True] and logged(db) == ["a"]
