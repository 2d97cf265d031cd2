"""Group commit: concurrent write units share one SQLite transaction and one commit.

SQLite commits one transaction at a time, and a commit costs about the same whether it carries one
Bundle or eight: the pages it touches go to the WAL once. Units that arrive while a commit is under way
queue up; one of them leads the next group: it runs every queued unit in its own SAVEPOINT (a failing
unit is rolled back alone and gets its own error), commits once, and wakes them. Nobody is told their
data is stored before the commit that stores it has returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection


@dataclass
class _Unit:
    job: Callable[[Connection], Any]
    finished: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommitter:
    """Runs write jobs in shared transactions opened with ``open_transaction``."""

    def __init__(
        self,
        open_transaction: Callable[[], AbstractContextManager[Connection]],
        max_group: int = 32,
        linger_s: float = 0.0,
        linger_until: int = 1,
    ) -> None:
        self._open = open_transaction
        self._max = max_group
        # A leader may wait up to linger_s for the queue to hold linger_until units: a longer wait for
        # one request, fewer commits for all (worth it where many producers write at once).
        self._linger = linger_s
        self._linger_until = linger_until
        self._cond = threading.Condition()
        self._queue: list[_Unit] = []
        self._leading = False
        self.groups = 0
        self.units = 0

    def run(self, job: Callable[[Connection], Any]) -> Any:
        """Run ``job`` on a connection inside a transaction that has committed when this returns."""
        unit = _Unit(job)
        with self._cond:
            self._queue.append(unit)
            while self._leading and not unit.finished:
                self._cond.wait()
            if unit.finished:
                return _outcome(unit)
            self._leading = True
        try:
            while not unit.finished:
                with self._cond:
                    if self._linger and len(self._queue) < self._linger_until:
                        self._cond.wait_for(lambda: len(self._queue) >= self._linger_until, self._linger)
                    batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                self._commit(batch)
                with self._cond:
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()
        return _outcome(unit)

    def _commit(self, batch: list[_Unit]) -> None:
        try:
            with self._open() as conn:
                for unit in batch:
                    savepoint = conn.begin_nested()
                    try:
                        unit.result = unit.job(conn)
                        savepoint.commit()
                    except Exception as exc:  # this unit fails alone; the others still commit
                        savepoint.rollback()
                        unit.error = exc
        except BaseException as exc:  # the commit itself failed: nothing of this group is stored
            for unit in batch:
                if unit.error is None:
                    unit.error = exc
        self.groups += 1
        self.units += len(batch)
        for unit in batch:
            unit.finished = True


def _outcome(unit: _Unit) -> Any:
    if unit.error is not None:
        raise unit.error
    return unit.result
