"""Group commit (``rhip.db.group_commit.GroupCommitter``) on a real SQLite file, and the write lock that
serialises SQLite writers across threads and processes (``rhip.db.engine.WriteLock``)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from rhip.db.engine import Database, DatabaseConfig, WriteLock, build_engine
from rhip.db.group_commit import GroupCommitter


class CommitFailed(Exception):
    pass


class Transactions:
    """A fake ``open_transaction``: a real SQLite transaction, with a record of each group and failing commits."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.groups: list[list[str]] = []  # the jobs each transaction ran, by label
        self.committed = 0
        self.fail_commit: Callable[[int], bool] = lambda _n: False
        self._current: list[str] | None = None

    @contextmanager
    def open(self) -> Iterator[Connection]:
        assert self._current is None, "two group transactions open at once"
        self._current = []
        self.groups.append(self._current)
        try:
            with self.engine.begin() as conn:
                yield conn
                if self.fail_commit(len(self.groups)):
                    raise CommitFailed(f"commit of group {len(self.groups)} failed")
            self.committed += 1
        finally:
            self._current = None

    def ran(self, label: str) -> None:
        assert self._current is not None, "a job ran outside a group transaction"
        self._current.append(label)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = build_engine(DatabaseConfig(url=f"sqlite:///{tmp_path}/group.db"))
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)")
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def tx(engine: Engine) -> Transactions:
    return Transactions(engine)


def labels(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT label FROM item"))}


def insert(tx: Transactions, label: str, fail: bool = False) -> Callable[[Connection], int]:
    def job(conn: Connection) -> int:
        tx.ran(label)
        rowid = conn.execute(text("INSERT INTO item (label) VALUES (:l)"), {"l": label}).lastrowid
        if fail:
            raise ValueError(f"job {label} failed after writing")
        assert rowid is not None
        return int(rowid)

    return job


def run_in_threads(jobs: list[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Run each call in its own thread; ("ok", result) or ("error", exception) per call, in order."""
    outcomes: list[tuple[str, Any]] = [("missing", None)] * len(jobs)

    def body(i: int) -> None:
        try:
            outcomes[i] = ("ok", jobs[i]())
        except Exception as exc:
            outcomes[i] = ("error", exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a job never finished"
    return outcomes


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def queued(committer: GroupCommitter) -> int:
    with committer._cond:
        return len(committer._queue)


def two_groups(
    committer: GroupCommitter, tx: Transactions, followers: list[Callable[[Connection], Any]]
) -> tuple[tuple[str, Any], list[tuple[str, Any]]]:
    """A leader job holds the first group open until every follower is queued: they form the next group(s)."""
    release = threading.Event()

    def leader_job(conn: Connection) -> str:
        tx.ran("leader")
        conn.execute(text("INSERT INTO item (label) VALUES ('leader')"))
        assert release.wait(30)
        return "leader-result"

    outcome: list[tuple[str, Any]] = []
    leader = threading.Thread(
        target=lambda: outcome.extend(run_in_threads([lambda: committer.run(leader_job)]))
    )
    leader.start()
    wait_for(lambda: len(tx.groups) == 1, "the leader's group")

    def release_when_queued() -> None:
        wait_for(lambda: queued(committer) == len(followers), "every follower to queue")
        release.set()

    releaser = threading.Thread(target=release_when_queued)
    releaser.start()
    results = run_in_threads([lambda job=job: committer.run(job) for job in followers])  # type: ignore[misc]
    releaser.join(30)
    leader.join(30)
    assert not leader.is_alive()
    return outcome[0], results


def test_jobs_from_many_threads_are_all_committed_with_their_results(
    engine: Engine, tx: Transactions
) -> None:
    committer = GroupCommitter(tx.open)
    names = [f"t{i}-{j}" for i in range(12) for j in range(4)]

    def thread_jobs(i: int) -> list[int]:
        return [committer.run(insert(tx, f"t{i}-{j}")) for j in range(4)]

    outcomes = run_in_threads([lambda i=i: thread_jobs(i) for i in range(12)])  # type: ignore[misc]
    assert all(kind == "ok" for kind, _ in outcomes)
    rowids = [r for _, result in outcomes for r in result]
    assert len(set(rowids)) == len(names)
    with engine.connect() as conn:
        stored: dict[int, str] = {int(r[0]): r[1] for r in conn.execute(text("SELECT id, label FROM item"))}
    for i, (_, result) in enumerate(outcomes):  # each job got its own row's id back
        assert [stored[r] for r in result] == [f"t{i}-{j}" for j in range(4)]
    assert sorted(label for group in tx.groups for label in group) == sorted(names)
    assert committer.units == len(names)
    assert committer.groups == len(tx.groups) == tx.committed


def test_queued_jobs_share_one_transaction_and_commit(engine: Engine, tx: Transactions) -> None:
    committer = GroupCommitter(tx.open)
    followers = [insert(tx, f"f{i}") for i in range(10)]
    leader, results = two_groups(committer, tx, followers)
    assert leader == ("ok", "leader-result")
    assert all(kind == "ok" for kind, _ in results)
    assert [len(g) for g in tx.groups] == [1, 10]
    assert tx.committed == 2
    assert (committer.groups, committer.units) == (2, 11)
    assert labels(engine) == {"leader", *(f"f{i}" for i in range(10))}


def test_groups_are_at_most_max_group(engine: Engine, tx: Transactions) -> None:
    committer = GroupCommitter(tx.open, max_group=4)
    leader, results = two_groups(committer, tx, [insert(tx, f"f{i}") for i in range(9)])
    assert leader[0] == "ok" and all(kind == "ok" for kind, _ in results)
    assert sorted(len(g) for g in tx.groups[1:]) == [1, 4, 4]
    assert len(labels(engine)) == 10


def test_a_failing_job_fails_alone(engine: Engine, tx: Transactions) -> None:
    committer = GroupCommitter(tx.open)
    followers = [insert(tx, f"f{i}", fail=(i == 3)) for i in range(6)]
    leader, results = two_groups(committer, tx, followers)
    assert leader[0] == "ok"
    kinds = [kind for kind, _ in results]
    assert kinds == ["ok", "ok", "ok", "error", "ok", "ok"]
    error = results[3][1]
    assert isinstance(error, ValueError)
    assert "f3" in str(error)
    assert [len(g) for g in tx.groups] == [1, 6]  # it ran in the shared transaction
    assert labels(engine) == {"leader", "f0", "f1", "f2", "f4", "f5"}  # its write was rolled back alone


def test_a_constraint_violation_fails_only_its_job(engine: Engine, tx: Transactions) -> None:
    committer = GroupCommitter(tx.open)
    followers = [insert(tx, "dup"), insert(tx, "dup"), insert(tx, "other")]
    _leader, results = two_groups(committer, tx, followers)
    kinds = sorted(kind for kind, _ in results)
    assert kinds == ["error", "ok", "ok"]
    assert labels(engine) == {"leader", "dup", "other"}


def test_a_failing_commit_fails_every_job_of_its_group(engine: Engine, tx: Transactions) -> None:
    committer = GroupCommitter(tx.open)
    tx.fail_commit = lambda group: group == 2
    followers = [insert(tx, f"f{i}", fail=(i == 1)) for i in range(5)]
    leader, results = two_groups(committer, tx, followers)
    assert leader == ("ok", "leader-result")
    assert [kind for kind, _ in results] == ["error"] * 5
    assert isinstance(results[1][1], ValueError)  # a job that failed by itself keeps its own error
    assert all(isinstance(err, CommitFailed) for i, (_, err) in enumerate(results) if i != 1)
    assert labels(engine) == {"leader"}
    # The committer is not stuck: the next job leads a new group and commits.
    assert committer.run(insert(tx, "after")) is not None
    assert labels(engine) == {"leader", "after"}


def test_a_single_job_on_its_own(engine: Engine, tx: Transactions) -> None:
    committer = GroupCommitter(tx.open)
    assert committer.run(lambda conn: conn.execute(text("SELECT 40 + 2")).scalar()) == 42
    with pytest.raises(ZeroDivisionError):
        committer.run(lambda conn: 1 // 0)
    assert committer.run(insert(tx, "x")) >= 1
    assert labels(engine) == {"x"}
    assert tx.groups == [[], [], ["x"]]


# -- the write lock -----------------------------------------------------------------------------------


def other_process_could_lock(path: str) -> bool:
    """Whether another open file description (as another process has) gets the flock now."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.mark.parametrize("with_file", [True, False], ids=["file", "memory"])
def test_write_lock_excludes_other_threads(tmp_path: Path, with_file: bool) -> None:
    lock = WriteLock(str(tmp_path / "db") if with_file else None)
    lock.acquire()
    acquired, release = threading.Event(), threading.Event()

    def other() -> None:
        lock.acquire()
        acquired.set()
        release.wait(30)
        lock.release()

    thread = threading.Thread(target=other)
    thread.start()
    assert not acquired.wait(0.2)
    lock.release()
    assert acquired.wait(10)
    release.set()
    thread.join(10)
    lock.acquire()  # free again
    lock.release()


def test_write_lock_serialises_read_modify_write(tmp_path: Path) -> None:
    lock = WriteLock(str(tmp_path / "db"))
    counter = [0]

    def work() -> None:
        for _ in range(200):
            lock.acquire()
            try:
                value = counter[0]
                time.sleep(0)  # let another thread run in the middle of the update
                counter[0] = value + 1
            finally:
                lock.release()

    outcomes = run_in_threads([work] * 6)
    assert all(kind == "ok" for kind, _ in outcomes)
    assert counter[0] == 6 * 200


def test_write_lock_excludes_other_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    lock, other = WriteLock(path), WriteLock(path)
    assert other_process_could_lock(path)
    lock.acquire()
    assert not other_process_could_lock(path)
    got_it = threading.Event()

    def second() -> None:
        other.acquire()  # another Database on the same file: its own thread lock, the same flock
        got_it.set()
        other.release()

    thread = threading.Thread(target=second)
    thread.start()
    assert not got_it.wait(0.2)
    lock.release()
    assert got_it.wait(10)
    thread.join(10)
    assert other_process_could_lock(path)


def test_sqlite_write_transactions_hold_the_lock_from_their_first_statement(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    db = Database(build_engine(DatabaseConfig(url=f"sqlite:///{path}")))
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with db.write() as conn:
            assert other_process_could_lock(path)  # validation and indexing run before the lock is taken
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            assert not other_process_could_lock(path)
        assert other_process_could_lock(path)
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            raise RuntimeError("rolled back")
        assert other_process_could_lock(path)
        with db.read() as conn:
            assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
    finally:
        db.dispose()


def test_database_run_grouped_commits_concurrent_jobs(tmp_path: Path) -> None:
    path = str(tmp_path / "g.db")
    db = Database(build_engine(DatabaseConfig(url=f"sqlite:///{path}")))
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

        def job(i: int) -> Callable[[Connection], int]:
            def run(conn: Connection) -> int:
                conn.exec_driver_sql(f"INSERT INTO t VALUES ({i})")
                return i

            return run

        outcomes = run_in_threads([lambda i=i: db.run_grouped(job(i)) for i in range(20)])  # type: ignore[misc]
        assert sorted(result for _, result in outcomes) == list(range(20))
        with db.read() as conn:
            assert sorted(conn.exec_driver_sql("SELECT x FROM t").scalars().all()) == list(range(20))
        assert other_process_could_lock(path)
    finally:
        db.dispose()
