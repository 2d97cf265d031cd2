"""The EMPI's outbox consumer: links every Patient the store committed, whatever happened to the request.

Online matching happens in the request; this catches what it could not (a failure between the two
commits, a bulk import run with online matching off). Processing is idempotent: a record the index
already holds at that version is skipped, so events seen twice cost one read.
"""

from __future__ import annotations

from collections.abc import Callable

from rhip.db import outbox
from rhip.empi.service import EmpiService

CONSUMER = "empi"
_EVENTS = {"ResourceCreated", "ResourceUpdated", "ResourceDeleted"}


def catch_up(service: EmpiService, batch: int = 1000, progress: Callable[[int], None] | None = None) -> int:
    """Process Patient events after the EMPI's outbox position; returns how many Patients were processed."""
    done = 0
    while True:
        with service.db.read() as conn:
            after = outbox.position(conn, CONSUMER)
            events = outbox.read_after(conn, after, limit=batch)
        if not events:
            return done
        latest: dict[str, str] = {}
        for e in events:
            if e.res_type == "Patient" and e.event in _EVENTS:
                latest[e.res_id] = e.event
        for patient_id, event in latest.items():
            if event == "ResourceDeleted":
                service.remove(patient_id)
            else:
                service.process(patient_id)
            done += 1
        with service.db.write() as conn:
            outbox.advance(conn, CONSUMER, events[-1].position)
        if progress:
            progress(len(latest))


def skip_to_end(service: EmpiService) -> None:
    """Move the EMPI's position past every event (after a relink has loaded everything the store holds)."""
    with service.db.read() as conn:
        after = outbox.position(conn, CONSUMER)
        last = None
        while True:
            events = outbox.read_after(conn, after, limit=10_000)
            if not events:
                break
            last = events[-1].position
            after = last
    if last is not None:
        with service.db.write() as conn:
            outbox.advance(conn, CONSUMER, last)
