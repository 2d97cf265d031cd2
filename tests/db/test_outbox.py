"""The outbox: events come out in order, once, and never behind a consumer that has moved past them.

On PostgreSQL ids are drawn from a sequence before commit, so a transaction can commit a lower id after
a higher one has been read; the tests hold transactions open on separate connections to make that happen.

Any open transaction on the PostgreSQL cluster holds events back (the snapshot's xmin is cluster-wide),
tests running beside these included: before expecting an event to come out, :func:`settle` waits until
the transactions that wrote the committed events, and all older ones, have ended. Assertions that nothing
comes out need no wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text

from rhip.db import outbox
from rhip.db.engine import DatabaseConfig, build_engine
from rhip.db.migrate import upgrade
from rhip.db.outbox import START, OutboxRecord, Position


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = build_engine(DatabaseConfig(url=database_url))
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def pg(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time: ids arrive in commit order")
    return engine


def event(res_id: str, version: int = 1) -> tuple[str, str, str, int, str | None, int]:
    return ("ResourceCreated", "Patient", res_id, version, res_id, 1_700_000_000_000_000)


def read(engine: Engine, after: Position = START) -> list[OutboxRecord]:
    with engine.connect() as conn:
        return outbox.read_after(conn, after)


def settle(engine: Engine) -> None:
    """Wait until the snapshot's xmin is past every committed event (other sessions may hold it back)."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 120
    while True:
        with engine.connect() as conn:
            newest = conn.execute(text("SELECT max(xact) FROM outbox")).scalar()
            xmin = conn.execute(
                text("SELECT (pg_snapshot_xmin(pg_current_snapshot()))::text::bigint")
            ).scalar_one()
        if newest is None or xmin > newest:
            return
        if time.monotonic() > deadline:
            pytest.fail("another transaction on the cluster stayed open for two minutes")
        time.sleep(0.05)


def res_ids(records: list[OutboxRecord]) -> list[str]:
    return [r.res_id for r in records]


def test_events_in_order_and_consumer_positions(engine: Engine) -> None:
    with engine.begin() as conn:
        outbox.append(conn, [event("a"), event("b")])
    with engine.begin() as conn:
        outbox.append(conn, [event("c")])
    settle(engine)
    first = read(engine)
    assert res_ids(first) == ["a", "b", "c"]
    assert [r.id for r in first] == sorted(r.id for r in first)
    if engine.dialect.name == "postgresql":
        assert all(r.xact is not None for r in first)
        assert first[0].xact == first[1].xact != first[2].xact
    else:
        assert all(r.xact is None for r in first)
    assert [r.position for r in first] == sorted(r.position for r in first)

    with engine.begin() as conn:
        assert outbox.position(conn, "empi") == START
        outbox.advance(conn, "empi", first[1].position)
    with engine.begin() as conn:
        assert outbox.position(conn, "empi") == first[1].position
        assert res_ids(outbox.read_after(conn, outbox.position(conn, "empi"))) == ["c"]
        outbox.advance(conn, "empi", first[2].position)
    with engine.connect() as conn:
        assert outbox.read_after(conn, outbox.position(conn, "empi")) == []
        assert res_ids(outbox.read_after(conn, START, limit=2)) == ["a", "b"]


def begin_with(engine: Engine, *res_ids: str) -> Connection:
    """An open transaction on its own connection that has appended events for ``res_ids``."""
    conn = engine.connect()
    conn.begin()
    outbox.append(conn, [event(i) for i in res_ids])
    return conn


def test_an_event_committed_after_a_higher_one_is_not_skipped(pg: Engine) -> None:
    """The first transaction draws the lower id and commits last: nothing is returned past it meanwhile."""
    slow = begin_with(pg, "slow")
    try:
        with pg.begin() as fast:
            outbox.append(fast, [event("fast")])
        ids = {r[0]: r[1] for r in read_ids(pg, slow)}
        assert ids["slow"] < ids["fast"]
        # "fast" committed, but "slow" may still commit with a lower id: "fast" is held back.
        assert read(pg) == []
        slow.commit()
    finally:
        slow.close()
    settle(pg)
    assert res_ids(read(pg)) == ["slow", "fast"]


def test_a_consumer_that_moved_on_still_gets_an_older_transactions_event(pg: Engine) -> None:
    """A transaction that started writing first but took a higher id is read before a later one."""
    early = pg.connect()
    early.begin()
    early.execute(text("SELECT pg_current_xact_id()"))  # started writing (has its transaction id)
    late = begin_with(pg, "late")  # draws the lower id
    try:
        outbox.append(early, [event("early")])
        early.commit()
        # "late" is still open and may commit: "early" (an older transaction) is safe to read now.
        settle(pg)
        seen = read(pg)
        assert res_ids(seen) == ["early"]
        position = seen[-1].position
        late.commit()
    finally:
        early.close()
        late.close()
    settle(pg)
    after = read(pg, position)
    assert res_ids(after) == ["late"]
    assert after[0].id < seen[0].id  # a consumer reading `id > last_id` would have lost it
    assert res_ids(read(pg)) == ["early", "late"]


def test_rolled_back_events_do_not_hold_back_others(pg: Engine) -> None:
    doomed = begin_with(pg, "doomed")
    try:
        with pg.begin() as conn:
            outbox.append(conn, [event("kept")])
        assert read(pg) == []
        doomed.rollback()
    finally:
        doomed.close()
    settle(pg)
    assert res_ids(read(pg)) == ["kept"]


def read_ids(engine: Engine, *conns: Connection) -> list[tuple[str, int]]:
    """(res_id, id) of every outbox row visible to ``conns`` or committed."""
    rows: list[tuple[str, int]] = []
    for conn in conns:
        rows += [(r[0], int(r[1])) for r in conn.execute(text("SELECT res_id, id FROM outbox"))]
    with engine.connect() as conn:
        rows += [(r[0], int(r[1])) for r in conn.execute(text("SELECT res_id, id FROM outbox"))]
    return rows


def test_migration_keeps_consumer_positions(database_url: str) -> None:
    """Events and positions written before revision 0002 are neither lost nor read twice."""
    eng = build_engine(DatabaseConfig(url=database_url))
    try:
        upgrade(eng, "0001")
        with eng.begin() as conn:
            outbox.append(conn, [event("old1"), event("old2")])  # the columns 0001 has
            first = conn.execute(text("SELECT min(id) FROM outbox")).scalar_one()
            conn.execute(
                text("INSERT INTO outbox_cursor (consumer, last_id) VALUES ('empi', :i)"), {"i": first}
            )
        upgrade(eng)
        with eng.begin() as conn:
            outbox.append(conn, [event("new")])
        settle(eng)
        with eng.connect() as conn:
            assert res_ids(outbox.read_after(conn, outbox.position(conn, "empi"))) == ["old2", "new"]
            assert res_ids(outbox.read_after(conn)) == ["old1", "old2", "new"]
    finally:
        eng.dispose()
