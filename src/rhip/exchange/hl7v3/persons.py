"""What the person query needs from the master patient index, declared here and wired by bootstrap.

The exchange never imports the EMPI (DESIGN.md §3). A person query (PRPA_IN201305UV02) answers the source
Patients it finds and, when a :class:`PersonLinks` is wired, adds the identifiers the same person carries in
the other institutions' records (cross-referencing, as IHE PIX does). Without one it answers the source
records as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LinkedPerson:
    """The master person a source Patient belongs to."""

    master_id: str
    identifiers: tuple[tuple[str, str], ...]  # (system, value) of every linked record, the asked one included
    patient_ids: tuple[str, ...]  # every source Patient linked to the person


class PersonLinks(Protocol):
    """The master person of a source Patient and its other records (the EMPI, wired by bootstrap)."""

    def person_of(self, patient_id: str) -> LinkedPerson | None:
        """The person ``patient_id`` is linked to; None when it is not linked (or unknown)."""
