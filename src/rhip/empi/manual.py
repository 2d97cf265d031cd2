"""Manual decisions: link, unlink, merge and unmerge masters, and deciding review items.

Every decision records its actor, goes to the link history and the outbox, and is sticky: records moved
by hand get origin ``manual`` (automatic matching leaves them where they are) and separations become
no-match pairs (automatic matching and relinking never join them again).
"""

from __future__ import annotations

from typing import Any

import orjson

from rhip.core.errors import Conflict, InvalidRequest, ResourceNotFound
from rhip.core.events import Event
from rhip.core.ids import new_resource_id
from rhip.db import outbox
from rhip.empi import repository as sql
from rhip.empi.events import MastersMerged, MasterUnmerged, PatientLinked
from rhip.empi.service import EmpiService, check_actor, now_us
from rhip.empi.tables import MANUAL, MATCH


def link(service: EmpiService, patient_id: str, master_id: str, actor: str) -> dict[str, Any]:
    """Link a source record to a master by hand (it stays there through relinking).

    No-match decisions between the record and that master's records are withdrawn (and the history says so).
    """
    who = check_actor(actor)
    published: list[Event] = []
    with service.db.write() as conn:
        row = service.require_record(conn, patient_id)
        service.require_master(conn, master_id)
        stamp = now_us()
        previous = row.master_id
        # A person linking by hand overrides an earlier "not the same person" decision about these records.
        separated = sql.no_match_of(conn, patient_id)
        withdrawn = sorted(m.patient_id for m in sql.members(conn, master_id) if m.patient_id in separated)
        for other in withdrawn:
            sql.remove_no_match(conn, patient_id, other)
        sql.set_link(conn, patient_id, master_id, MATCH, MANUAL, row.weight, stamp)
        sql.stale_open(conn, patient_id)
        service.refresh_master(conn, master_id, stamp)
        if previous != master_id:
            service.refresh_master(conn, previous, stamp)
        service.history(
            conn, "link", patient_id, master_id, previous, MATCH, MANUAL, row.weight, who, "", stamp
        )
        service.link_event(
            conn, published, patient_id, row.version, master_id, previous, MATCH, MANUAL, stamp
        )
    service.publish(published)
    return {"patient": patient_id, "master": master_id, "previous": previous}


def unlink(service: EmpiService, patient_id: str, actor: str) -> dict[str, Any]:
    """Take a source record out of its master into a master of its own; it is never rejoined automatically."""
    who = check_actor(actor)
    published: list[Event] = []
    with service.db.write() as conn:
        row = service.require_record(conn, patient_id)
        others = [m for m in sql.members(conn, row.master_id) if m.patient_id != patient_id]
        if not others:
            raise InvalidRequest(
                f"Patient/{patient_id} is alone in its master already", code="RHIP-EMPI-0006"
            )
        stamp = now_us()
        for other in others:
            sql.add_no_match(conn, patient_id, other.patient_id, who, stamp)
        master_id = new_resource_id()
        sql.set_link(conn, patient_id, master_id, MATCH, MANUAL, None, stamp)
        sql.stale_open(conn, patient_id)
        service.refresh_master(conn, master_id, stamp)
        service.refresh_master(conn, row.master_id, stamp)
        service.history(
            conn, "unlink", patient_id, master_id, row.master_id, MATCH, MANUAL, None, who, "", stamp
        )
        service.link_event(
            conn, published, patient_id, row.version, master_id, row.master_id, MATCH, MANUAL, stamp
        )
    service.publish(published)
    return {"patient": patient_id, "master": master_id, "previous": row.master_id}


def merge(service: EmpiService, from_master: str, into_master: str, actor: str) -> dict[str, Any]:
    """Move every record of ``from_master`` into ``into_master`` and retire ``from_master``."""
    who = check_actor(actor)
    if from_master == into_master:
        raise InvalidRequest("a master cannot be merged into itself", code="RHIP-EMPI-0007")
    published: list[Event] = []
    with service.db.write() as conn:
        service.require_master(conn, from_master)
        service.require_master(conn, into_master)
        moving = sql.members(conn, from_master)
        staying = {m.patient_id for m in sql.members(conn, into_master)}
        for m in moving:
            clash = sql.no_match_of(conn, m.patient_id) & staying
            if clash:
                raise Conflict(
                    f"Patient/{m.patient_id} was decided not to be Patient/{sorted(clash)[0]}; unlink first",
                    code="RHIP-EMPI-0005",
                )
        stamp = now_us()
        for m in moving:
            sql.set_link(conn, m.patient_id, into_master, MATCH, MANUAL, m.weight, stamp)
            service.history(
                conn,
                "merge",
                m.patient_id,
                into_master,
                from_master,
                MATCH,
                MANUAL,
                m.weight,
                who,
                orjson.dumps({"from": from_master, "origin": m.origin, "state": m.state}).decode(),
                stamp,
            )
        service.refresh_master(conn, into_master, stamp)
        version = sql.save_master(conn, from_master, None, "merged", stamp, merged_into=into_master)
        outbox.append(conn, [("MastersMerged", "EmpiMaster", from_master, version, into_master, stamp)])
        published.append(MastersMerged(from_master, into_master))
    service.publish(published)
    return {"from": from_master, "into": into_master, "moved": [m.patient_id for m in moving]}


def unmerge(service: EmpiService, master_id: str, actor: str) -> dict[str, Any]:
    """Undo the merge of ``master_id`` (a merged master): its records go back, as they were, to it."""
    who = check_actor(actor)
    published: list[Event] = []
    with service.db.write() as conn:
        row = sql.get_master(conn, master_id)
        if row is None:
            raise ResourceNotFound(f"no master record {master_id}", code="RHIP-EMPI-0002")
        if row.status != "merged" or not row.merged_into:
            raise InvalidRequest(f"master {master_id} is not a merged master", code="RHIP-EMPI-0008")
        into = row.merged_into
        moved = [
            h
            for h in sql.history(conn, None, into, 100_000)
            if h.action == "merge" and h.previous_master_id == master_id
        ]
        # The rows of one merge share its instant; the last merge is the one to undo.
        last = max((h.at_us for h in moved), default=0)
        batch = [h for h in moved if h.at_us == last]
        stamp = now_us()
        restored: list[str] = []
        for h in batch:
            current = sql.get_record(conn, h.patient_id) if h.patient_id else None
            if current is None or current.master_id != into:
                continue  # removed since, or moved again by a later decision
            before = orjson.loads(h.detail) if h.detail else {}
            sql.set_link(
                conn,
                current.patient_id,
                master_id,
                before.get("state", MATCH),
                before.get("origin", MANUAL),
                current.weight,
                stamp,
            )
            service.history(
                conn,
                "unmerge",
                current.patient_id,
                master_id,
                into,
                MATCH,
                MANUAL,
                current.weight,
                who,
                "",
                stamp,
            )
            restored.append(current.patient_id)
        if not restored:
            raise Conflict(
                f"none of the records merged from {master_id} is still in {into}", code="RHIP-EMPI-0009"
            )
        sql.save_master(conn, master_id, None, "active", stamp)
        service.refresh_master(conn, master_id, stamp)
        service.refresh_master(conn, into, stamp)
        outbox.append(conn, [("MasterUnmerged", "EmpiMaster", master_id, 0, into, stamp)])
        published.append(MasterUnmerged(master_id, into))
        for pid in restored:
            published.append(PatientLinked(pid, master_id, into, MATCH, MANUAL))
    service.publish(published)
    return {"master": master_id, "from": into, "restored": restored}


def decide_review(service: EmpiService, review_id: int, decision: str, actor: str) -> dict[str, Any]:
    """Decide a review item: ``link`` (same person) or ``separate`` (different people)."""
    who = check_actor(actor)
    with service.db.read() as conn:
        item = sql.get_review(conn, review_id)
    if item is None:
        raise ResourceNotFound(f"no review item {review_id}", code="RHIP-EMPI-0010")
    if item.status != "open":
        raise Conflict(f"review item {review_id} was {item.status} already", code="RHIP-EMPI-0011")
    if decision == "link":
        result = link(service, item.patient_id, item.master_id, who)
    elif decision == "separate":
        with service.db.write() as conn:
            stamp = now_us()
            for other in sql.members(conn, item.master_id):
                if other.patient_id != item.patient_id:
                    sql.add_no_match(conn, item.patient_id, other.patient_id, who, stamp)
            record = service.require_record(conn, item.patient_id)
            sql.set_link(conn, item.patient_id, record.master_id, MATCH, MANUAL, record.weight, stamp)
            service.refresh_master(conn, record.master_id, stamp)
            service.history(
                conn,
                "separate",
                item.patient_id,
                record.master_id,
                item.master_id,
                MATCH,
                MANUAL,
                None,
                who,
                f"review {review_id}",
                stamp,
            )
        result = {"patient": item.patient_id, "master": record.master_id, "separated_from": item.master_id}
    else:
        raise InvalidRequest("decision must be 'link' or 'separate'", code="RHIP-EMPI-0012")
    with service.db.write() as conn:
        sql.close_review(conn, review_id, "linked" if decision == "link" else "separate", who, now_us())
    return result
