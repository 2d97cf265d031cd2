"""What the EMPI compares of a Patient: its normalised features, extracted once and stored compactly.

Features are derived from the Patient resource alone, so a stored record can always be rebuilt from the
FHIR store. They are kept as a flat tuple (see :data:`FIELDS`) in ``empi_record.features``: a relink of a
million records decodes them, and a tuple of strings is the cheapest thing to decode and compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from sys import intern
from typing import Any

import orjson

from rhip.empi.normalize.address import address_from_fhir
from rhip.empi.normalize.idnumber import contradictions, parse_id_number
from rhip.empi.normalize.names import name_from_fhir
from rhip.empi.normalize.phones import phones_from_fhir

ID_CARD = "urn:oid:2.16.156.10011.1.3"  # 居民身份证号 (DESIGN.md §4)
# Person-level identifiers: one value per person in the region, so agreement is strong evidence.
CARD_SYSTEMS: dict[str, str] = {
    "urn:oid:2.16.156.10011.1.19": "health-card",  # 居民健康卡
    "urn:oid:2.16.156.10011.1.15": "insurance",  # 医保卡
    "urn:oid:2.16.156.10011.1.2": "health-record",  # 城乡居民健康档案编号
}
# Visit-level numbers (门诊号/住院号) say nothing about the person across institutions.
VISIT_SYSTEMS = frozenset({"urn:oid:2.16.156.10011.1.11", "urn:oid:2.16.156.10011.1.12"})

# How far an ID number can be trusted (GB 11643 check, and agreement with the record it is on).
TRUSTED, DOUBTFUL, BORROWED = 2, 1, 0


@dataclass(slots=True)
class Features:
    """The normalised identity of one source Patient."""

    patient_id: str
    name: str = ""  # normalised full name ("" unknown, or a newborn placeholder)
    family: str = ""
    given: str = ""
    pinyin: str = ""
    family_pinyin: str = ""
    given_pinyin: str = ""
    placeholder: str = ""  # the parent's name of a newborn registered as 王丽之子
    birth_date: str = ""  # YYYY-MM-DD as recorded
    sex: str = ""  # male | female
    id_number: str = ""  # 18-character 居民身份证号 (15-digit ones upgraded)
    id_trust: int = (
        BORROWED  # TRUSTED valid and consistent; DOUBTFUL bad check or contradiction; BORROWED none/other's
    )
    id_flags: str = ""  # comma-separated: invalid, upgraded, birth-date, sex
    phones: tuple[str, ...] = ()
    county: str = ""
    township: str = ""
    village: str = ""
    street: str = ""  # the address below the divisions (or a Latin address line without its number)
    house: str = ""
    line2: str = ""
    postcode: str = ""
    city: str = ""  # a Latin address's locality (suburb); Chinese addresses use the division codes
    state: str = ""
    cards: tuple[tuple[str, str], ...] = ()  # (kind, value) of person-level identifiers
    multiple_birth: bool = False
    deceased: bool = False
    source: str = ""  # the sending system: the MRN namespace, else the managing organization
    identifiers: tuple[tuple[str, str], ...] = ()  # every (system, value) as sent, for PIX and the master
    address_text: str = ""  # the home address as written, for the master record

    def to_json(self) -> bytes:
        """The stored form: a JSON array in field order (without the patient id, which is the row key)."""
        return orjson.dumps(astuple(self)[1:])

    @classmethod
    def from_json(cls, patient_id: str, data: bytes | str) -> Features:
        """Rebuild from :meth:`to_json`.

        Fields with few distinct values (divisions, surnames, birth dates, sex, source) are interned: a
        relink holds a million records, and one shared string instead of a million copies saves about
        a third of their memory.
        """
        values = orjson.loads(data)
        for k in _SHARED:
            values[k] = intern(values[k])
        values[_PHONES] = tuple(values[_PHONES])
        values[_CARDS] = tuple(tuple(c) for c in values[_CARDS])
        values[_IDENTIFIERS] = tuple(tuple(c) for c in values[_IDENTIFIERS])
        return cls(patient_id, *values)

    def record(self) -> dict[str, str | None]:
        """A flat dict of the comparable fields (what the Splink baseline and the review screen show)."""
        return {
            "id": self.patient_id,
            "name": self.name or None,
            "family": self.family or None,
            "given": self.given or None,
            "pinyin": self.pinyin or None,
            "given_pinyin": self.given_pinyin or None,
            "birth_date": self.birth_date or None,
            "sex": self.sex or None,
            "id_number": self.id_number if self.id_trust else None,
            "phone": self.phones[0] if self.phones else None,
            "county": self.county or None,
            "township": self.township or None,
            "village": self.village or None,
            "street": self.street or None,
            "health_card": _card(self.cards, "health-card"),
            "insurance": _card(self.cards, "insurance"),
        }


FIELDS = tuple(f.name for f in fields(Features))
_PHONES = FIELDS.index("phones") - 1
_SHARED = tuple(
    FIELDS.index(name) - 1
    for name in (
        "name",
        "family",
        "given",
        "pinyin",
        "family_pinyin",
        "given_pinyin",
        "placeholder",
        "birth_date",
        "sex",
        "id_flags",
        "county",
        "township",
        "village",
        "postcode",
        "city",
        "state",
        "source",
    )
)
_CARDS = FIELDS.index("cards") - 1
_IDENTIFIERS = FIELDS.index("identifiers") - 1


def _card(cards: tuple[tuple[str, str], ...], kind: str) -> str | None:
    return next((v for k, v in cards if k == kind), None)


def extract(patient: Mapping[str, Any], card_systems: Mapping[str, str] = CARD_SYSTEMS) -> Features:
    """The features of a FHIR Patient (``card_systems`` maps further person-level identifier systems)."""
    f = Features(str(patient.get("id") or ""))
    name = name_from_fhir(patient.get("name"))
    if name is not None:
        if name.placeholder_of is not None:
            f.placeholder = name.placeholder_of
        else:
            f.name, f.family, f.given = name.text, name.family, name.given
            f.pinyin, f.family_pinyin, f.given_pinyin = name.pinyin, name.family_pinyin, name.given_pinyin
    birth = patient.get("birthDate")
    if isinstance(birth, str):
        f.birth_date = birth[:10]
    gender = patient.get("gender")
    if gender in ("male", "female"):
        f.sex = gender
    _identifiers(f, patient.get("identifier"), card_systems)
    f.phones = phones_from_fhir(patient.get("telecom"))
    _address(f, patient.get("address"))
    f.multiple_birth = bool(patient.get("multipleBirthBoolean")) or bool(
        isinstance(patient.get("multipleBirthInteger"), int) and patient["multipleBirthInteger"] > 0
    )
    f.deceased = bool(patient.get("deceasedBoolean") or patient.get("deceasedDateTime"))
    if not f.source:
        org = patient.get("managingOrganization")
        if isinstance(org, Mapping) and isinstance(org.get("reference"), str):
            f.source = org["reference"]
    return f


def _identifiers(f: Features, identifiers: Any, card_systems: Mapping[str, str]) -> None:
    if not isinstance(identifiers, Sequence):
        return
    cards: list[tuple[str, str]] = []
    every: list[tuple[str, str]] = []
    for ident in identifiers:
        if not isinstance(ident, Mapping):
            continue
        system, value = ident.get("system"), ident.get("value")
        if not isinstance(value, str) or not value.strip() or not isinstance(system, str):
            continue
        every.append((system, value.strip()))
        if system == ID_CARD:
            if not f.id_number:
                _id_number(f, value)
        elif system in card_systems:
            cards.append((card_systems[system], value.strip().upper()))
        elif system not in VISIT_SYSTEMS and not f.source:
            f.source = system  # the first local identifier names the sending system (its MRN namespace)
    f.cards = tuple(dict.fromkeys(cards))
    f.identifiers = tuple(dict.fromkeys(every))


def _id_number(f: Features, raw: str) -> None:
    parsed = parse_id_number(raw)
    if parsed is None:
        return
    f.id_number = parsed.value
    flags = [] if parsed.valid else ["invalid"]
    if parsed.upgraded:
        flags.append("upgraded")
    against = contradictions(parsed, f.birth_date or None, f.sex or None) if parsed.valid else ()
    flags.extend(against)
    f.id_flags = ",".join(flags)
    # A number whose birth year is years away from the record's is someone else's: a newborn under
    # the mother's number, a child under a parent's. It identifies the family, not the person.
    if (
        "birth-date" in against
        and parsed.birth_date
        and f.birth_date[:4].isdigit()
        and abs(int(parsed.birth_date[:4]) - int(f.birth_date[:4])) >= 12
    ):
        f.id_trust = BORROWED
        f.id_flags += ",borrowed"
        return
    f.id_trust = TRUSTED if parsed.valid and not against else DOUBTFUL


def _address(f: Features, addresses: Any) -> None:
    parsed = address_from_fhir(addresses if isinstance(addresses, Sequence) else None)
    if parsed is not None:
        f.county = parsed.county or ""
        f.township = parsed.township or ""
        f.village = parsed.village or ""
        f.street = parsed.street
        f.house = parsed.house or ""
    if not isinstance(addresses, Sequence) or not addresses:
        return
    first = addresses[0]
    if isinstance(first, Mapping):
        f.address_text = str(first.get("text") or " ".join(str(x) for x in first.get("line") or ()))
    if f.county:
        return
    # A Latin address (no Chinese divisions): the line, the locality and the postcode compare as text.
    if not isinstance(first, Mapping):
        return
    lines = [str(x).strip().lower() for x in first.get("line") or () if str(x).strip()]
    if lines:
        number, _, rest = lines[0].partition(" ")
        if number.isdigit():
            f.house, f.street = number, rest.strip()
        else:
            f.street = lines[0]
        f.line2 = lines[1] if len(lines) > 1 else ""
    f.city = str(first.get("city") or "").strip().lower()
    f.postcode = str(first.get("postalCode") or "").strip()
    f.state = str(first.get("state") or "").strip().lower()
