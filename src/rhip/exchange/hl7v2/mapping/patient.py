"""PID (and MRG, NK1) → Patient and RelatedPerson, shared by every mapper that names a patient.

One source Patient per (institution, local id): the Patient is upserted with
``PUT Patient?identifier=urn:rhip:mrn:<authority>|<local id>``, the local id being the first PID-3
repetition of a local type (MR, PI, … or untyped) — the sender's own namespace first. Every Patient is
managed by the sending institution's Organization; the master patient index links source Patients itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhip.exchange.hl7v2.datatypes import (
    MRN_PREFIX,
    cwe_concept,
    cx_identifier,
    marital_status,
    sex_gender,
    ts_date,
    ts_datetime,
    uri_name,
    xad_address,
    xpn_name,
    xtn_contact,
)
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    MappingError,
    entry_identifier,
    identifier_criteria,
    key,
    location,
    missing,
    reading,
    reference,
)
from rhip.exchange.hl7v2.message import Segment

ETHNICITY_EXTENSION = "urn:rhip:ext:ethnicity"


@dataclass(frozen=True)
class PatientEntry:
    """A Patient in the transaction: its fullUrl, its local identifier and the criteria that find it."""

    full_url: str
    identifier: Json
    criteria: str

    @property
    def key(self) -> str:
        """``system|value`` of the local identifier (a patient key of Mapped)."""
        return key(self.identifier)


def identifiers(seg: Segment, fields: tuple[int, ...], institution: str) -> list[Json]:
    """The identifiers of CX fields (PID-3, then PID-2 and PID-4; MRG-1 …), without repeats."""
    found: dict[tuple[str, str], Json] = {}
    for n in fields:
        with reading(seg, n):
            for raw in seg.repetitions(n):
                ident = cx_identifier(raw, seg.delimiters, institution)
                if ident is not None:
                    found.setdefault((ident["system"], ident["value"]), ident)
    return list(found.values())


def local_identifier(idents: list[Json], institution: str) -> Json | None:
    """The local patient id: in the sender's MRN namespace first, else any MRN namespace."""
    own = MRN_PREFIX + uri_name(institution)
    for ident in idents:
        if ident["system"] == own:
            return ident
    for ident in idents:
        if str(ident["system"]).startswith(MRN_PREFIX):
            return ident
    return None


def patient_resource(pid: Segment, idents: list[Json], institution: str, builder: BundleBuilder) -> Json:
    """The Patient a PID describes (identifiers already read)."""
    d, zone = pid.delimiters, builder.ctx.zone
    patient: Json = {"resourceType": "Patient", "identifier": idents, "active": True}
    with reading(pid, 5):
        names = [xpn_name(raw, d, "official" if i == 0 else None) for i, raw in enumerate(pid.repetitions(5))]
    if any(names):
        patient["name"] = [n for n in names if n]
    with reading(pid, 8):
        gender = sex_gender(pid.get(8))
    if gender:
        patient["gender"] = gender
    with reading(pid, 7):
        birth = ts_date(pid.get(7))
    if birth:
        patient["birthDate"] = birth
    with reading(pid, 11):
        addresses = [a for a in (xad_address(raw, d) for raw in pid.repetitions(11)) if a]
    if addresses:
        patient["address"] = addresses
    telecom = [t for t in (xtn_contact(raw, d) for raw in pid.repetitions(13)) if t]
    for raw in pid.repetitions(14):
        contact = xtn_contact(raw, d)
        if contact is not None:
            contact.setdefault("use", "work")
            telecom.append(contact)
    if telecom:
        patient["telecom"] = telecom
    with reading(pid, 16):
        marital = marital_status(pid.repetitions(16)[0], d, institution) if pid.repetitions(16) else None
    if marital:
        patient["maritalStatus"] = marital
    ethnic = cwe_concept(pid.repetitions(22)[0], d, institution) if pid.repetitions(22) else None
    if ethnic:
        patient["extension"] = [{"url": ETHNICITY_EXTENSION, "valueCodeableConcept": ethnic}]
    with reading(pid, 29):
        died = ts_datetime(pid.get(29), zone)
    deceased = pid.get(30).upper()
    if died:
        patient["deceasedDateTime"] = died
    elif deceased in ("Y", "N"):
        patient["deceasedBoolean"] = deceased == "Y"
    births = pid.get(25)
    if births.isdigit() and int(births) > 0:
        patient["multipleBirthInteger"] = int(births)
    elif pid.get(24).upper() in ("Y", "N"):
        patient["multipleBirthBoolean"] = pid.get(24).upper() == "Y"
    patient["managingOrganization"] = reference(builder.organization())
    return patient


def map_patient(
    builder: BundleBuilder, pid: Segment, *, focus: bool = True, demographics: bool = True
) -> PatientEntry:
    """Upsert the Patient of a PID (``PUT Patient?identifier=<local id>``); MappingError 101 without one.

    ``demographics``: the message is the patient administration feed (ADT), whose PID is the record. Results,
    orders, appointments and documents often carry a sparse PID (an MRN and a name): for them the Patient
    is created when new and otherwise left as ADT wrote it, so they never wipe an ID number or a phone.
    """
    institution = builder.ctx.institution
    idents = identifiers(pid, (3, 2, 4), institution)
    local = local_identifier(idents, institution)
    if local is None:
        if not idents:
            raise missing(pid, 3, "patient identifier list")
        raise MappingError(
            "PID-3 holds no local patient identifier (type MR or PI, or untyped, of the institution)",
            segment="PID",
            sequence=pid.sequence,
            field=3,
            hl7_code="101",
        )
    resource = patient_resource(pid, idents, institution, builder)
    criteria = identifier_criteria(local)
    where = location(builder.message, pid)
    if demographics:
        full_url = builder.put(resource, criteria, where, focus=focus)
    else:
        full_url = builder.create(resource, criteria, where, focus=focus)
    return PatientEntry(full_url, local, criteria)


def map_related_person(builder: BundleBuilder, nk1: Segment, patient: PatientEntry) -> str | None:
    """NK1 → RelatedPerson (upserted under the patient's key, name and relationship); None without a name."""
    d, institution = nk1.delimiters, builder.ctx.institution
    with reading(nk1, 2):
        names = [n for n in (xpn_name(raw, d) for raw in nk1.repetitions(2)) if n]
    if not names:
        return None
    with reading(nk1, 3):
        relationship = cwe_concept(nk1.repetitions(3)[0], d, institution) if nk1.repetitions(3) else None
    rel_code = relationship["coding"][0]["code"] if relationship and "coding" in relationship else ""
    ident = entry_identifier(institution, patient.identifier["value"], "NK1", names[0]["text"], rel_code)
    person: Json = {
        "resourceType": "RelatedPerson",
        "identifier": [ident],
        "active": True,
        "patient": reference(patient.full_url),
        "name": names,
    }
    if relationship:
        person["relationship"] = [relationship]
    telecom = [t for t in (xtn_contact(raw, d) for raw in nk1.repetitions(5)) if t]
    telecom += [t for t in (xtn_contact(raw, d) for raw in nk1.repetitions(6)) if t]
    if telecom:
        person["telecom"] = telecom
    with reading(nk1, 4):
        addresses = [a for a in (xad_address(raw, d) for raw in nk1.repetitions(4)) if a]
    if addresses:
        person["address"] = addresses
    with reading(nk1, 15):
        gender = sex_gender(nk1.get(15))
    if gender:
        person["gender"] = gender
    with reading(nk1, 16):
        birth = ts_date(nk1.get(16))
    if birth:
        person["birthDate"] = birth
    return builder.put(person, identifier_criteria(ident), location(builder.message, nk1))
