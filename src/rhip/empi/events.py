"""Events the EMPI publishes (in process and through the outbox) when links and masters change.

Consumers (documents, subscriptions, analytics) read them from the outbox by name: ``res_type`` is
``Patient`` with ``compartment`` the master for link events, ``EmpiMaster`` for master events.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhip.core.events import Event


@dataclass(frozen=True)
class PatientLinked(Event):
    """A source Patient now belongs to ``master_id`` (it belonged to ``previous_master_id``, if any)."""

    patient_id: str
    master_id: str
    previous_master_id: str | None
    state: str
    origin: str


@dataclass(frozen=True)
class MastersMerged(Event):
    """Every record of ``from_master`` moved to ``into_master``; ``from_master`` is retired."""

    from_master: str
    into_master: str


@dataclass(frozen=True)
class MasterUnmerged(Event):
    """A merge was undone: ``restored_master`` is active again with the records it had."""

    restored_master: str
    from_master: str


@dataclass(frozen=True)
class PatientUnlinked(Event):
    """A source Patient left its master (a deletion, or a person's unlink)."""

    patient_id: str
    master_id: str
