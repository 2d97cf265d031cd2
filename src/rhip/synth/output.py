"""What one household's care becomes on disk, in every format its institutions use.

A ``Chunk`` collects a household's visits, puts them in time order, registers the person at each
institution on the first visit there (so the Patient precedes what refers to it), and renders each visit:
FHIR NDJSON and a transaction Bundle for every institution (the canonical form), HL7 v2 for the hospitals
whose systems speak it, HL7 v3 registrations for the township centres that use it, and CDA documents.
The chunk holds bytes only; the driver (``rhip.synth.run``) appends them to the files.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime
from typing import Any

import orjson

from rhip.synth import hl7v2, hl7v3
from rhip.synth.builders import SHANGHAI
from rhip.synth.care import Visit
from rhip.synth.documents import render_document
from rhip.synth.population import Person
from rhip.synth.region import Region
from rhip.synth.registration import Registrar, Registration

_V2_CHARSET = {"UTF-8": "UNICODE UTF-8", "GBK": "GB 18030-2000"}


class Chunk:
    """The output of one household."""

    def __init__(
        self, key: int, region: Region, registrar: Registrar, rng: random.Random, documents: bool
    ) -> None:
        self.key = key
        self.region = region
        self.registrar = registrar
        self.rng = rng
        self.documents = documents
        self.visits: list[Visit] = []
        self.files: dict[tuple[str, str], list[bytes]] = {}
        self.archives: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        self.counts: Counter[str] = Counter()
        self.cases: list[bytes] = []
        self.registrations: list[bytes] = []
        self.truth_persons: list[bytes] = []
        self.immunizations: list[bytes] = []
        self._control = 0

    def __getstate__(self) -> dict[str, Any]:
        """Only the rendered bytes travel back from a worker process (not the region or the registrar)."""
        state = self.__dict__.copy()
        for heavy in ("region", "registrar", "rng"):
            state.pop(heavy, None)
        return state

    # -- collection ----------------------------------------------------------------------------
    def visit(self, v: Visit) -> None:
        """Keep a finished visit until the household is done."""
        self.visits.append(v)

    def case(
        self, p: Person, disease: str, onset: date, reported: date, inst: str, condition: str, outbreak: str
    ) -> None:
        """Ground truth of a notifiable case."""
        self.cases.append(
            f"{p.id},{disease},{onset.isoformat()},{reported.isoformat()},{inst},{condition},{outbreak}\n".encode()
        )

    # -- rendering ------------------------------------------------------------------------------
    def finish(self) -> None:
        """Render the household's visits in time order."""
        self.visits.sort(key=lambda v: (v.start, v.encounter_id))
        for v in self.visits:
            self._render(v)
        self.visits.clear()

    def _append(self, kind: str, inst: str, data: bytes) -> None:
        self.files.setdefault((kind, inst), []).append(data)

    def _render(self, v: Visit) -> None:
        inst = v.inst
        reg, new = self.registrar.register(v.person, inst, v.day, v.patient_id)
        patient_changed = False
        if new:
            self._registration_truth(reg)
        else:
            patient_changed = self._refresh(v.person, reg, v.day)
        if v.discharge_death:
            reg.resource["deceasedDateTime"] = v.end
            patient_changed = True
        resources = ([reg.resource] if new or patient_changed else []) + v.resources
        lines = [orjson.dumps(r) for r in resources]
        for r, line in zip(resources, lines, strict=True):
            self.counts[r["resourceType"]] += 1
            self._append("fhir", inst.code, line + b"\n")
        self._append("bundles", inst.code, _bundle(resources, lines))
        if inst.door == "hl7v2":
            self._v2(v, reg, new, patient_changed)
        elif inst.door == "hl7v3" and (new or patient_changed):
            self._v3(v, reg, new)
        if self.documents:
            for code in v.documents:
                if _documented(code, inst):
                    self._document(code, v, reg)

    def _refresh(self, p: Person, reg: Registration, day: date) -> bool:
        """Update the institution's Patient when the resident gives a new phone or address."""
        changed = False
        village, house = p.address_on(day)
        if village != reg.village:
            reg.village = village
            reg.resource["address"] = [self.registrar.address(village, house)]
            changed = True
        phone = p.phone_on(day)
        if reg.phone and phone != reg.phone:
            reg.phone = phone
            reg.resource["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
            changed = True
        return changed

    def _registration_truth(self, reg: Registration) -> None:
        self.registrations.append(
            f"{reg.institution},{reg.patient_id},{reg.mrn},{reg.person},{reg.registered.isoformat()},{'|'.join(reg.errors)}\n".encode()
        )

    def _control_id(self, v: Visit) -> str:
        self._control += 1
        return f"{v.inst.code[-3:]}{self.key:07d}{self._control:05d}"

    def _v2(self, v: Visit, reg: Registration, new: bool, changed: bool) -> None:
        inst = v.inst
        org = self.region.organization_resource(inst)
        charset = _V2_CHARSET[inst.charset]
        field = inst.msh18
        sent = _sent(v.start)
        enc = v.encounter
        conditions = [r for r in v.resources if r["resourceType"] == "Condition"]
        practitioner = self.region.practitioner_resource(inst, v.doctor) if v.doctor else None
        messages: list[str] = []
        if changed and not new:
            messages.append(
                hl7v2.adt(
                    "A08",
                    reg.resource,
                    org,
                    control_id=self._control_id(v),
                    sent=sent,
                    sending_app=inst.his,
                    charset_field=field,
                )
            )
        immunizations = [r for r in v.resources if r["resourceType"] == "Immunization"]
        if immunizations:
            messages.append(
                hl7v2.vxu_v04(
                    reg.resource,
                    org,
                    control_id=self._control_id(v),
                    sent=sent,
                    immunizations=immunizations,
                    sending_app=inst.his,
                    charset_field=field,
                )
            )
        else:
            event = "A01" if v.klass == "IMP" else "A04"
            messages.append(
                hl7v2.adt(
                    event,
                    reg.resource,
                    org,
                    control_id=self._control_id(v),
                    sent=sent,
                    encounter=enc,
                    practitioner=practitioner,
                    conditions=conditions,
                    sending_app=inst.his,
                    charset_field=field,
                )
            )
            for rep, results in v.lab_reports:
                messages.append(
                    hl7v2.oru_r01(
                        reg.resource,
                        org,
                        control_id=self._control_id(v),
                        sent=_sent(rep["issued"]),
                        report=rep,
                        observations=results,
                        encounter=enc,
                        sending_app=inst.his,
                        charset_field=field,
                    )
                )
            if v.klass == "IMP":
                messages.append(
                    hl7v2.adt(
                        "A03",
                        reg.resource,
                        org,
                        control_id=self._control_id(v),
                        sent=_sent(v.end),
                        encounter=enc,
                        practitioner=practitioner,
                        conditions=conditions,
                        sending_app=inst.his,
                        charset_field=field,
                    )
                )
        for m in messages:
            self._append("hl7v2", inst.code, hl7v2.frame(m, charset, errors="replace"))

    def _v3(self, v: Visit, reg: Registration, new: bool) -> None:
        inst = v.inst
        org = self.region.organization_resource(inst)
        build = hl7v3.patient_register if new else hl7v3.patient_update
        message_id = f"{inst.code}-{self.key:07d}-{len(self.archives.get(('hl7v3', inst.code), [])) + 1:04d}"
        body = build(
            reg.resource, org, message_id=message_id, sent=_sent(v.start), sender_device=f"{inst.code}-PHIS"
        )
        self.archives.setdefault(("hl7v3", inst.code), []).append((f"{message_id}.xml", body))

    def _document(self, code: str, v: Visit, reg: Registration) -> None:
        doc_id = f"{code}-{v.encounter_id}"
        xml = render_document(code, self.region, v, reg.resource, doc_id)
        if xml is not None:
            self.archives.setdefault(("cda", v.inst.code), []).append((f"{doc_id}.xml", xml))


# Documents every institution registers (mandatory reports and the inpatient record), and those only
# institutions on the document services (the HL7 v3 door) send for routine public-health visits.
_ALWAYS = frozenset(("C0002", "C0007", "C0032", "C0053", "HSDC00.05", "HSDB03.02"))


def _documented(code: str, inst: Any) -> bool:
    return code in _ALWAYS or inst.door == "hl7v3"


def _sent(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(SHANGHAI)


def _bundle(resources: list[dict[str, Any]], lines: list[bytes]) -> bytes:
    """A transaction Bundle of the visit: PUTs with the resources' ids (so loading it twice changes nothing)."""
    entries = []
    for r, line in zip(resources, lines, strict=True):
        url = f"{r['resourceType']}/{r['id']}"
        entries.append(b'{"resource":' + line + b',"request":{"method":"PUT","url":"' + url.encode() + b'"}}')
    return b'{"resourceType":"Bundle","type":"transaction","entry":[' + b",".join(entries) + b"]}\n"
