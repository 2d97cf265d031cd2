"""The master (golden) Patient of a person, built from its linked source records by survivorship rules.

Each field takes its value from one source record chosen by the field's rule:

- ``most-trusted``: the record ranked highest by source trust (``EmpiSettings.trusted_sources``, a list of
  source-system prefixes, first = most trusted), then by a trusted ID number, then by recency;
- ``most-recent``: the record updated last;
- ``most-common``: the value most records agree on (ties go to the most trusted).

Identifiers are the union of every source's (the master's own id first), so that PIX answers from the
master alone, and ``link`` lists every source Patient.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rhip.empi.features import ID_CARD, TRUSTED, Features

MASTER_SYSTEM = "urn:rhip:empi:master"  # Identifier.system of master ids
MASTER_TAG = {"system": "urn:rhip:empi", "code": "master", "display": "EMPI master record (主索引)"}
RULES = ("most-trusted", "most-recent", "most-common")
DEFAULT_RULES: dict[str, str] = {
    "name": "most-trusted",
    "gender": "most-common",
    "birthDate": "most-common",
    "telecom": "most-recent",
    "address": "most-recent",
}


@dataclass(frozen=True, slots=True)
class Source:
    """A linked source record as survivorship sees it."""

    features: Features
    updated_us: int


def _trust_rank(trusted_sources: Sequence[str]) -> Callable[[Source], tuple[int, int, int]]:
    def rank(s: Source) -> tuple[int, int, int]:
        place = next(
            (i for i, prefix in enumerate(trusted_sources) if s.features.source.startswith(prefix)),
            len(trusted_sources),
        )
        return (-place, 1 if s.features.id_trust == TRUSTED else 0, s.updated_us)

    return rank


def _pick(
    sources: Sequence[Source],
    rule: str,
    value: Callable[[Features], Any],
    rank: Callable[[Source], tuple[int, int, int]],
) -> Any:
    having = [s for s in sources if value(s.features)]
    if not having:
        return None
    if rule == "most-recent":
        return value(max(having, key=lambda s: s.updated_us).features)
    if rule == "most-common":
        counts = Counter(value(s.features) for s in having)
        top = max(counts.values())
        tied = [s for s in having if counts[value(s.features)] == top]
        return value(max(tied, key=rank).features)
    return value(max(having, key=rank).features)


def golden(
    master_id: str,
    sources: Sequence[Source],
    rules: Mapping[str, str] | None = None,
    trusted_sources: Sequence[str] = (),
) -> dict[str, Any]:
    """The master Patient of ``sources`` (at least one)."""
    chosen = {**DEFAULT_RULES, **(rules or {})}
    rank = _trust_rank(trusted_sources)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": master_id,
        "meta": {"tag": [MASTER_TAG]},
        "identifier": [{"use": "official", "system": MASTER_SYSTEM, "value": master_id}],
        "active": True,
    }
    seen: set[tuple[str, str]] = set()
    id_number = _pick(sources, chosen["name"], lambda f: f.id_number if f.id_trust == TRUSTED else "", rank)
    if id_number:
        patient["identifier"].append({"system": ID_CARD, "value": id_number})
        seen.add((ID_CARD, id_number))
    for s in sorted(sources, key=lambda s: s.features.patient_id):
        for system, value in s.features.identifiers:
            if system == ID_CARD or (system, value) in seen:
                continue
            seen.add((system, value))
            patient["identifier"].append({"system": system, "value": value})
    name = _pick(sources, chosen["name"], lambda f: (f.name, f.family, f.given) if f.name else None, rank)
    if name:
        text, family, given = name
        entry: dict[str, Any] = {"use": "official", "text": text}
        if family:
            entry["family"] = family
        if given:
            entry["given"] = [given]
        patient["name"] = [entry]
    gender = _pick(sources, chosen["gender"], lambda f: f.sex, rank)
    if gender:
        patient["gender"] = gender
    birth = _pick(sources, chosen["birthDate"], lambda f: f.birth_date, rank)
    if birth:
        patient["birthDate"] = birth
    phones = _pick(sources, chosen["telecom"], lambda f: f.phones, rank)
    if phones:
        patient["telecom"] = [{"system": "phone", "value": p} for p in phones]
    address = _pick(
        sources, chosen["address"], lambda f: (f.address_text, f.village or f.township or f.county), rank
    )
    if address and address[0]:
        home: dict[str, Any] = {"use": "home", "text": address[0]}
        if address[1]:
            home["extension"] = [{"url": "urn:rhip:ext:division", "valueCode": address[1]}]
        patient["address"] = [home]
    if any(s.features.deceased for s in sources):
        patient["deceasedBoolean"] = True
    patient["link"] = [
        {"other": {"reference": f"Patient/{s.features.patient_id}"}, "type": "seealso"}
        for s in sorted(sources, key=lambda s: s.features.patient_id)
    ]
    return patient
