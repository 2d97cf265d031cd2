"""Adapters that let L3 capabilities use each other through the Protocols they declare (DESIGN.md §3)."""

from __future__ import annotations

from rhip.core.errors import ResourceNotFound
from rhip.empi import manual
from rhip.empi.queries import master_of
from rhip.empi.service import EmpiService


class EmpiPatientMerger:
    """The exchange's ``PatientMerger`` over the resident index: a v2 A40 or v3 merge joins two persons.

    The sender says two of its local records are one resident; the obsolete record's person is merged into
    the surviving record's person, so every record of either (from any institution) ends up together.
    Records the index has not seen yet (matching offline) are matched first.
    """

    def __init__(self, empi: EmpiService) -> None:
        self.empi = empi

    def _master(self, patient_id: str) -> str:
        try:
            return str(master_of(self.empi, patient_id)["id"])
        except ResourceNotFound:
            self.empi.process(patient_id)
            return str(master_of(self.empi, patient_id)["id"])

    def merge(self, surviving_patient_id: str, obsolete_patient_id: str, *, actor: str) -> None:
        """Merge the obsolete record's master into the surviving record's master."""
        into, source = self._master(surviving_patient_id), self._master(obsolete_patient_id)
        if into != source:
            manual.merge(self.empi, source, into, actor)
