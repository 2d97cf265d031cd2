"""Read-only questions to the index: $match candidates, PIX cross-references, masters, links, review items."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from rhip.core.errors import InvalidRequest, ResourceNotFound
from rhip.empi import repository as sql
from rhip.empi.blocking import MAX_BLOCK, candidate_keys, hash_key, identifier_value, pinyin_value
from rhip.empi.features import Features
from rhip.empi.matching import MasterScore, decide, score_masters
from rhip.empi.model import weight_to_probability
from rhip.empi.normalize.names import normalise_name, pinyin_of
from rhip.empi.normalize.phones import normalise_phone
from rhip.empi.service import EmpiService

if TYPE_CHECKING:
    from sqlalchemy import Connection

MAX_LOOKUP = 1000  # ids a lookup key may resolve to before the caller must narrow the question


@dataclass
class Candidate:
    """A master that an incoming record may belong to."""

    master: dict[str, Any]
    probability: float
    grade: str  # certain | probable | possible | certainly-not (the PDQm match-grade codes)
    weight: float
    explanation: dict[str, str]


def grade(service: EmpiService, score: MasterScore) -> str:
    """The match-grade code of a candidate master."""
    model = service.model
    if score.veto:
        return "certainly-not"
    if score.weight >= model.link_weight and score.best.cap is None:
        return "certain"
    if score.weight >= model.review_weight:
        return "probable"
    return "possible"


def match(service: EmpiService, patient: dict[str, Any], count: int, only_certain: bool) -> list[Candidate]:
    """Masters that ``patient`` (not stored) may be, best first (PDQm ``$match``)."""
    if patient.get("resourceType") != "Patient":
        raise InvalidRequest("$match needs a Patient resource", code="RHIP-EMPI-0013")
    f = service.features({**patient, "id": patient.get("id") or "$match"})
    with service.db.read() as conn:
        rows = sql.get_records(conn, sql.candidate_ids(conn, candidate_keys(f)))
        scores = score_masters(service.model, f, [(r.decoded(), r.master_id) for r in rows])
        masters = {s.master_id: sql.get_master(conn, s.master_id) for s in scores[: max(count, 1) * 2]}
    decision = decide(service.model, scores)
    out: list[Candidate] = []
    for s in scores:
        m = masters.get(s.master_id)
        if m is None or m.content is None:
            continue
        g = grade(service, s)
        if g == "certainly-not" or (only_certain and (g != "certain" or decision.outcome != "link")):
            continue
        explanation = {
            c.name: (c.levels[level] if level >= 0 else "missing")
            for c, level in zip(service.model.comparisons, s.best.gamma, strict=True)
        }
        out.append(Candidate(orjson.loads(m.content), s.best.probability, g, s.weight, explanation))
        if len(out) >= count:
            break
    return out


def _ids_for(conn: Connection, value: str) -> list[str]:
    ids = sql.candidate_ids(conn, [hash_key(value)])
    return ids[:MAX_LOOKUP]


def source_record(conn: Connection, system: str, value: str) -> sql.RecordRow | None:
    """The source record carrying an identifier (system and value exactly as sent)."""
    for row in sql.get_records(conn, _ids_for(conn, identifier_value(system, value))):
        if (system, value.strip()) in row.decoded().identifiers:
            return row
    return None


def pix(
    service: EmpiService, system: str, value: str, target_systems: Sequence[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Every identifier, and every source Patient id, of the person an identifier belongs to (PIXm)."""
    with service.db.read() as conn:
        row = source_record(conn, system, value)
        if row is None:
            return [], []
        members = sql.members(conn, row.master_id)
    identifiers: list[tuple[str, str]] = []
    for m in members:
        for ident in m.decoded().identifiers:
            if ident not in identifiers and (not target_systems or ident[0] in target_systems):
                identifiers.append(ident)
    return identifiers, [m.patient_id for m in members]


def master_of(service: EmpiService, patient_or_master: str) -> dict[str, Any]:
    """The golden record of a master id, or of the master a source Patient belongs to."""
    with service.db.read() as conn:
        row = sql.get_record(conn, patient_or_master)
        master_id = row.master_id if row is not None else patient_or_master
        master = service.require_master(conn, master_id)
    content: dict[str, Any] = orjson.loads(master.content)
    content.setdefault("meta", {})["versionId"] = str(master.version)
    return content


def pinyin_ids(service: EmpiService, values: Sequence[str]) -> list[str] | None:
    """Source Patient ids whose full-name pinyin is one of ``values`` (None: too many to list)."""
    found: list[str] = []
    with service.db.read() as conn:
        for value in values:
            key = pinyin_value(value)
            ids = sql.candidate_ids(conn, [hash_key(key)])
            if len(ids) >= MAX_BLOCK:
                return None
            rows = sql.get_records(conn, ids)
            found.extend(r.patient_id for r in rows if pinyin_value(r.decoded().pinyin) == key)
    return list(dict.fromkeys(found))


def search_masters(
    service: EmpiService, criteria: dict[str, str], count: int, offset: int
) -> list[dict[str, Any]]:
    """Masters matching every criterion: identifier (system|value), phone, name or pinyin, birthdate, gender."""
    lookups: list[str] = []
    if criteria.get("identifier"):
        system, _, value = criteria["identifier"].rpartition("|")
        lookups.append(identifier_value(system, value))
    if criteria.get("phone"):
        phone = normalise_phone(criteria["phone"])
        if phone:
            lookups.append("p:" + phone)
    for given in (criteria.get("name"), criteria.get("pinyin")):
        if given:
            parsed = normalise_name(text=given)
            spoken = parsed.pinyin if parsed is not None and parsed.pinyin else pinyin_of(given)
            lookups.append(pinyin_value(spoken))
    if not lookups:
        raise InvalidRequest("search masters by identifier, phone, name or pinyin", code="RHIP-EMPI-0014")
    with service.db.read() as conn:
        ids: set[str] | None = None
        for key in lookups:
            found = set(sql.candidate_ids(conn, [hash_key(key)]))
            ids = found if ids is None else ids & found
        rows = sql.get_records(conn, sorted(ids or ()))
        master_ids = sorted({r.master_id for r in rows if _fits(r.decoded(), criteria)})
        masters = sql.search_masters(conn, master_ids, count, offset)
    return [orjson.loads(m.content) for m in masters if m.content is not None]


def _fits(f: Features, criteria: dict[str, str]) -> bool:
    if criteria.get("birthdate") and f.birth_date != criteria["birthdate"]:
        return False
    return not (criteria.get("gender") and f.sex != criteria["gender"])


def links(service: EmpiService, patient_id: str | None, master_id: str | None) -> list[dict[str, Any]]:
    """The links of a source record, or of every record of a master."""
    with service.db.read() as conn:
        if patient_id:
            row = service.require_record(conn, patient_id)
            rows = [row]
        elif master_id:
            rows = sql.members(conn, master_id)
        else:
            raise InvalidRequest("query links by patient or by master", code="RHIP-EMPI-0015")
    return [
        {
            "patient": r.patient_id,
            "master": r.master_id,
            "state": r.state,
            "origin": r.origin,
            "probability": None if r.weight is None else round(weight_to_probability(r.weight), 6),
            "updated_us": r.updated_us,
        }
        for r in rows
    ]


def review_item(service: EmpiService, review_id: int) -> dict[str, Any]:
    """A review item with both sides: the record, the candidate master's records, and how they compare."""
    with service.db.read() as conn:
        item = sql.get_review(conn, review_id)
        if item is None:
            raise ResourceNotFound(f"no review item {review_id}", code="RHIP-EMPI-0010")
        record = service.require_record(conn, item.patient_id).decoded()
        others = sql.members(conn, item.master_id)
    comparisons = []
    for other in others:
        o = other.decoded()
        gamma = service.model.gamma(record, o)
        comparisons.append(
            {
                "patient": o.patient_id,
                "record": o.record(),
                "levels": {
                    c.name: (c.levels[g] if g >= 0 else "missing")
                    for c, g in zip(service.model.comparisons, gamma, strict=True)
                },
                "probability": round(weight_to_probability(service.model.weigh(record, o, gamma)), 6),
            }
        )
    return {
        "id": item.id,
        "status": item.status,
        "reason": item.reason,
        "probability": round(weight_to_probability(item.weight), 6),
        "record": record.record(),
        "master": item.master_id,
        "candidates": comparisons,
    }


def review_list(
    service: EmpiService, status: str | None, count: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Review items, newest first, and how many there are."""
    with service.db.read() as conn:
        items, total = sql.reviews(conn, status, count, offset)
    return [
        {
            "id": i.id,
            "patient": i.patient_id,
            "master": i.master_id,
            "probability": round(weight_to_probability(i.weight), 6),
            "reason": i.reason,
            "status": i.status,
            "actor": i.actor,
        }
        for i in items
    ], total
