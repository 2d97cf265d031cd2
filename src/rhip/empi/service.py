"""The EMPI service: matches every incoming Patient and keeps links and masters, with history and events.

Online matching runs in the request that stored the Patient (the store publishes ``ResourceCreated`` /
``ResourceUpdated`` after its commit and bootstrap routes Patient events here), in one EMPI transaction:
lock the record's blocking keys (PostgreSQL; SQLite writes serially), find candidates, score, decide, then
write the record, its keys, its master, history, review and outbox events. Should that transaction fail
(the database went away between the two commits), the Patient is stored but unlinked, and
:meth:`EmpiService.catch_up` links it from the outbox: nothing a sender was told is stored goes unmatched.

Manual decisions (origin ``manual``, and no-match pairs) are never changed by automatic matching.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from rhip.core.errors import InvalidRequest, ResourceGone, ResourceNotFound
from rhip.core.events import Event, EventBus
from rhip.core.ids import new_resource_id
from rhip.db import outbox
from rhip.empi import repository as sql
from rhip.empi.blocking import candidate_keys, keys
from rhip.empi.events import PatientLinked, PatientUnlinked
from rhip.empi.features import CARD_SYSTEMS, Features, extract
from rhip.empi.matching import LINK, NEW, REVIEW, Decision, decide, score_masters
from rhip.empi.model import MatchModel, default_model
from rhip.empi.survivorship import Source, golden
from rhip.empi.tables import AUTO, MANUAL, MATCH, POSSIBLE_MATCH
from rhip.fhir.repository import StoredResource

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("rhip.empi")
SYSTEM = "system"  # the actor of automatic decisions


class PatientReader(Protocol):
    """Where the EMPI reads source Patients (the FHIR repository, normally behind the security layer)."""

    def read(self, resource_type: str, id: str) -> StoredResource:
        """The current version of a resource."""


class Database(Protocol):
    """The transactions the EMPI needs (``rhip.db.engine.Database``)."""

    backend: str

    def read(self) -> AbstractContextManager[Connection]:
        """A read transaction."""

    def write(self) -> AbstractContextManager[Connection]:
        """A write transaction, committed at the end of the block."""


@dataclass
class EmpiConfig:
    """EMPI settings (from ``RHIP_EMPI__*``, injected by bootstrap)."""

    online: bool = True
    survivorship: dict[str, str] = field(default_factory=dict)
    trusted_sources: list[str] = field(default_factory=list)
    card_systems: dict[str, str] = field(default_factory=dict)


@dataclass
class MatchOutcome:
    """What happened to one source record."""

    patient_id: str
    master_id: str
    outcome: str  # link | new | review | unchanged | manual
    weight: float | None
    reason: str = ""


def now_us() -> int:
    """Microseconds since the epoch."""
    return time.time_ns() // 1000


class EmpiService:
    """Matching, links, masters, manual decisions and the review queue."""

    def __init__(
        self,
        db: Database,
        patients: PatientReader,
        config: EmpiConfig | None = None,
        events: EventBus | None = None,
        model: MatchModel | None = None,
    ) -> None:
        self.db = db
        self.patients = patients
        self.config = config or EmpiConfig()
        self.events = events
        self._model = model
        self._card_systems = {**CARD_SYSTEMS, **self.config.card_systems}

    # -- the model --------------------------------------------------------------------------------------

    @property
    def model(self) -> MatchModel:
        """The active model: the region's trained one, else the packaged default."""
        if self._model is None:
            with self.db.read() as conn:
                stored = sql.active_model(conn)
            self._model = MatchModel.from_json(stored) if stored else default_model()
        return self._model

    def use_model(self, model: MatchModel, *, store: bool = True) -> None:
        """Make ``model`` the active one (stored in the database for every process)."""
        if store:
            with self.db.write() as conn:
                sql.save_model(conn, model.version, model.to_json(), now_us())
        self._model = model

    def features(self, patient: dict[str, Any]) -> Features:
        """The features of a Patient resource under this configuration."""
        return extract(patient, self._card_systems)

    # -- online matching ----------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Bus subscriber: match Patients as the store commits them (never raises into the request)."""
        resource_type = getattr(event, "resource_type", None)
        if resource_type != "Patient" or not self.config.online:
            return
        patient_id = str(getattr(event, "id", ""))
        try:
            if type(event).__name__ == "ResourceDeleted":
                self.remove(patient_id)
            else:
                self.process(patient_id)
        except Exception:  # the Patient is stored; catch_up links it later
            log.exception("EMPI matching failed; the record will be linked by the catch-up")

    def process(self, patient_id: str, *, force: bool = False) -> MatchOutcome:
        """Match the current version of a stored Patient and record the outcome."""
        try:
            stored = self.patients.read("Patient", patient_id)
        except (ResourceGone, ResourceNotFound):
            self.remove(patient_id)
            return MatchOutcome(patient_id, "", "removed", None)
        resource = stored.resource()
        if _is_master(resource):
            return MatchOutcome(patient_id, "", "unchanged", None, "a master record")
        return self.process_features(self.features(resource), stored.version, force=force)

    def process_features(self, f: Features, version: int, *, force: bool = False) -> MatchOutcome:
        """Match a record's features and store the outcome (the Patient is already stored)."""
        found = candidate_keys(f)
        blocking = keys(f, found)
        data = f.to_json()
        published: list[Event] = []
        with self.db.write() as conn:
            sql.lock_keys(conn, blocking)
            existing = sql.get_record(conn, f.patient_id)
            stamp = now_us()
            if existing is not None and not force:
                if existing.version >= version and existing.features == data:
                    return MatchOutcome(f.patient_id, existing.master_id, "unchanged", existing.weight)
                if existing.origin == MANUAL or existing.features == data:
                    existing.version, existing.features, existing.updated_us = version, data, stamp
                    sql.save_record(conn, existing, blocking)
                    self.refresh_master(conn, existing.master_id, stamp)
                    kept = "manual" if existing.origin == MANUAL else "unchanged"
                    return MatchOutcome(f.patient_id, existing.master_id, kept, existing.weight)
            decision = self._decide(conn, f, sql.candidate_ids(conn, found))
            outcome = self._apply(conn, f, version, data, blocking, existing, decision, stamp, published)
        self.publish(published)
        return outcome

    def _decide(self, conn: Connection, f: Features, ids: Sequence[str]) -> Decision:
        rows = sql.get_records(conn, [i for i in ids if i != f.patient_id])
        candidates = [(r.decoded(), r.master_id) for r in rows]
        masters = score_masters(self.model, f, candidates, sql.no_match_of(conn, f.patient_id))
        return decide(self.model, masters)

    def _apply(
        self,
        conn: Connection,
        f: Features,
        version: int,
        data: bytes,
        blocking: list[int],
        existing: sql.RecordRow | None,
        decision: Decision,
        stamp: int,
        published: list[Event],
    ) -> MatchOutcome:
        previous = existing.master_id if existing is not None else None
        if decision.outcome == LINK and decision.master_id is not None:
            master_id, state, weight = decision.master_id, MATCH, decision.weight
        elif previous is not None and [m.patient_id for m in sql.members(conn, previous)] == [f.patient_id]:
            master_id, state, weight = previous, MATCH, None  # alone in its master already: keep it
        else:
            master_id, state, weight = new_resource_id(), MATCH, None
        if decision.outcome == REVIEW:
            state = POSSIBLE_MATCH
        row = sql.RecordRow(f.patient_id, version, master_id, state, AUTO, weight, data, stamp)
        sql.save_record(conn, row, blocking)
        sql.stale_open(conn, f.patient_id)
        if decision.outcome == REVIEW and decision.master_id is not None:
            sql.add_review(
                conn, f.patient_id, decision.master_id, decision.weight, decision.reason[:64], stamp
            )
        self.refresh_master(conn, master_id, stamp)
        if previous is not None and previous != master_id:
            self.refresh_master(conn, previous, stamp)
        action = {LINK: "link", REVIEW: "review", NEW: "new"}[decision.outcome]
        if previous == master_id and existing is not None and existing.state == state:
            return MatchOutcome(f.patient_id, master_id, "unchanged", weight, decision.reason)
        self.history(
            conn,
            action,
            f.patient_id,
            master_id,
            previous,
            state,
            AUTO,
            weight,
            SYSTEM,
            decision.reason,
            stamp,
        )
        self.link_event(conn, published, f.patient_id, version, master_id, previous, state, AUTO, stamp)
        return MatchOutcome(f.patient_id, master_id, action, weight, decision.reason)

    def remove(self, patient_id: str, actor: str = SYSTEM) -> None:
        """Forget a deleted Patient: its master loses it (and retires when it was the last)."""
        published: list[Event] = []
        with self.db.write() as conn:
            existing = sql.get_record(conn, patient_id)
            if existing is None:
                return
            stamp = now_us()
            sql.remove_record(conn, patient_id)
            sql.stale_open(conn, patient_id)
            self.refresh_master(conn, existing.master_id, stamp)
            self.history(
                conn, "remove", patient_id, None, existing.master_id, None, None, None, actor, "", stamp
            )
            published.append(PatientUnlinked(patient_id, existing.master_id))
            outbox.append(
                conn,
                [("PatientUnlinked", "Patient", patient_id, existing.version, existing.master_id, stamp)],
            )
        self.publish(published)

    # -- shared helpers (also used by the manual operations and relink) -------------------------------------

    def refresh_master(self, conn: Connection, master_id: str, stamp: int) -> None:
        """Rebuild a master's golden record from its members, or retire it when it has none."""
        rows = sql.members(conn, master_id)
        current = sql.get_master(conn, master_id)
        if not rows:
            if current is not None and current.status == "active":
                sql.save_master(conn, master_id, None, "retired", stamp)
            return
        content = orjson.dumps(self.golden(master_id, rows))
        if (
            current is not None
            and current.status == "active"
            and current.content is not None
            and bytes(current.content) == content
        ):
            return
        version = sql.save_master(conn, master_id, content, "active", stamp)
        outbox.append(conn, [("MasterChanged", "EmpiMaster", master_id, version, master_id, stamp)])

    def golden(self, master_id: str, rows: Sequence[sql.RecordRow]) -> dict[str, Any]:
        """The golden Patient of a master's members."""
        sources = [Source(r.decoded(), r.updated_us) for r in rows]
        return golden(master_id, sources, self.config.survivorship, self.config.trusted_sources)

    def history(
        self,
        conn: Connection,
        action: str,
        patient_id: str | None,
        master_id: str | None,
        previous: str | None,
        state: str | None,
        origin: str | None,
        weight: float | None,
        actor: str,
        detail: str,
        stamp: int,
    ) -> None:
        """Append one row of link history."""
        sql.add_history(
            conn,
            [
                {
                    "at_us": stamp,
                    "action": action,
                    "patient_id": patient_id,
                    "master_id": master_id,
                    "previous_master_id": previous,
                    "state": state,
                    "origin": origin,
                    "weight": weight,
                    "actor": actor[:128],
                    "detail": detail or None,
                }
            ],
        )

    def link_event(
        self,
        conn: Connection,
        published: list[Event],
        patient_id: str,
        version: int,
        master_id: str,
        previous: str | None,
        state: str,
        origin: str,
        stamp: int,
    ) -> None:
        """Write a PatientLinked event to the outbox and queue it for in-process subscribers."""
        outbox.append(conn, [("PatientLinked", "Patient", patient_id, version, master_id, stamp)])
        published.append(PatientLinked(patient_id, master_id, previous, state, origin))

    def publish(self, published: Sequence[Event]) -> None:
        """Deliver events in process once their transaction has committed."""
        if self.events is not None:
            for event in published:
                self.events.publish(event)

    def require_record(self, conn: Connection, patient_id: str) -> sql.RecordRow:
        """A source record the EMPI holds, or a 404."""
        row = sql.get_record(conn, patient_id)
        if row is None:
            raise ResourceNotFound(
                f"Patient/{patient_id} is not in the resident index", code="RHIP-EMPI-0001"
            )
        return row

    def require_master(self, conn: Connection, master_id: str) -> Any:
        """An active master, or a 404 (410 when merged or retired)."""
        row = sql.get_master(conn, master_id)
        if row is None:
            raise ResourceNotFound(f"no master record {master_id}", code="RHIP-EMPI-0002")
        if row.status != "active":
            where = f" into {row.merged_into}" if row.merged_into else ""
            raise ResourceGone(f"master record {master_id} was {row.status}{where}", code="RHIP-EMPI-0003")
        return row


def _is_master(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or ()
    return any(t.get("system") == "urn:rhip:empi" and t.get("code") == "master" for t in tags)


def check_actor(actor: str | None) -> str:
    """The actor of a manual decision (required, at most 128 characters)."""
    if not actor or not actor.strip():
        raise InvalidRequest("a manual decision needs the actor who made it", code="RHIP-EMPI-0004")
    return actor.strip()[:128]


ProgressCallback = Callable[[int], None]
