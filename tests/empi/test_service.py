"""The EMPI service on a real platform: matching in the request, updates, deletions, catch-up, relink."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db import outbox
from rhip.db.migrate import upgrade
from rhip.empi import manual
from rhip.empi import repository as sql
from rhip.empi.consumer import CONSUMER, catch_up
from rhip.empi.fhir_api import register  # noqa: F401 -- the platform registers it; imported to fail early
from rhip.empi.model import MatchModel, default_model
from rhip.empi.relink import relink
from rhip.empi.service import EmpiService
from rhip.fhir.bulk import export_resources

from .factory import id_number, patient


def build(settings: Settings, *, online: bool = True) -> Platform:
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    return build_platform(settings, empi_online=online)


@pytest.fixture
def plat(settings: Settings) -> Iterator[Platform]:
    p = build(settings)
    try:
        yield p
    finally:
        p.close()


def empi(p: Platform) -> EmpiService:
    assert p.empi is not None
    return p.empi


def store(p: Platform, resource: dict[str, Any]) -> str:
    """Create a Patient through the repository (as every door does) and return its id."""
    body = {k: v for k, v in resource.items() if k != "id"}
    return p.repository.create(body).id


def master(p: Platform, patient_id: str) -> str:
    with p.db.read() as conn:
        row = sql.get_record(conn, patient_id)
    assert row is not None, f"Patient/{patient_id} was not linked"
    return row.master_id


def golden(p: Platform, master_id: str) -> dict[str, Any]:
    with p.db.read() as conn:
        row = sql.get_master(conn, master_id)
    assert row is not None and row.content is not None
    parsed: dict[str, Any] = orjson.loads(row.content)
    return parsed


NUMBER = id_number("510703", "1980-03-15", 11)


def test_a_patient_is_linked_in_the_request_that_stores_it(plat: Platform) -> None:
    a = store(plat, patient(id_no=NUMBER, mrn="urn:rhip:mrn:A"))
    b = store(plat, patient(id_no=NUMBER, mrn="urn:rhip:mrn:B", phone=None))
    assert master(plat, a) == master(plat, b)
    record = golden(plat, master(plat, a))
    assert {lk["other"]["reference"] for lk in record["link"]} == {f"Patient/{a}", f"Patient/{b}"}
    assert {"system": "urn:oid:2.16.156.10011.1.3", "value": NUMBER} in record["identifier"]
    assert record["meta"]["tag"][0]["code"] == "master"


def test_an_update_rematches_and_a_deletion_retires_the_master(plat: Platform) -> None:
    a = store(plat, patient(id_no=NUMBER, given="伟"))
    other = id_number("510703", "1991-01-01", 13)
    b = store(plat, patient(id_no=other, given="芳", birth="1991-01-01", sex="male", phone="13900000009"))
    assert master(plat, a) != master(plat, b)
    # B's registration is corrected: it was A all along.
    fixed = patient(id_no=NUMBER, given="伟", mrn="urn:rhip:mrn:B")
    plat.repository.update("Patient", b, {**fixed, "id": b})
    assert master(plat, b) == master(plat, a)
    before = master(plat, a)
    plat.repository.delete("Patient", b)
    with plat.db.read() as conn:
        assert sql.get_record(conn, b) is None
    plat.repository.delete("Patient", a)
    with plat.db.read() as conn:
        assert sql.get_master(conn, before).status == "retired"


def test_catch_up_links_what_online_matching_did_not(settings: Settings) -> None:
    p = build(settings, online=False)
    try:
        a = store(p, patient(id_no=NUMBER))
        b = store(p, patient(id_no=NUMBER, mrn="urn:rhip:mrn:B"))
        with p.db.read() as conn:
            assert sql.get_record(conn, a) is None
        assert catch_up(empi(p)) == 2
        assert master(p, a) == master(p, b)
        assert catch_up(empi(p)) == 0  # the position moved past them
        with p.db.read() as conn:
            assert outbox.position(conn, CONSUMER).id > 0
    finally:
        p.close()


def test_relink_links_a_bulk_load_and_keeps_manual_decisions(settings: Settings) -> None:
    p = build(settings, online=False)
    try:
        a = store(p, patient(id_no=NUMBER))
        b = store(p, patient(id_no=NUMBER, mrn="urn:rhip:mrn:B"))
        c = store(p, patient(id_no=NUMBER, mrn="urn:rhip:mrn:C"))
        stranger = store(
            p, patient(family="李", given="娜", birth="1970-07-07", sex="female", id_no=None, phone=None)
        )
        service = empi(p)
        assert p.parser is not None
        summary = relink(service, export_resources(p.repository, p.parser, ["Patient"]), workers=1)
        assert summary.loaded == 4 and summary.records == 4 and summary.masters == 2
        assert master(p, a) == master(p, b) == master(p, c) != master(p, stranger)
        # A person separates C, and links the stranger by hand; a relink keeps both decisions.
        manual.unlink(service, c, "dr.li")
        manual.link(service, stranger, master(p, a), "dr.li")
        separated = master(p, c)
        again = relink(service, workers=1)
        assert again.loaded == 0
        assert master(p, c) == separated != master(p, a)
        assert master(p, stranger) == master(p, a) == master(p, b)
        with p.db.read() as conn:
            history = [h.action for h in sql.history(conn, c, None, 50)]
        assert "unlink" in history
    finally:
        p.close()


def test_review_item_is_decided_and_the_decision_sticks(plat: Platform) -> None:
    service = empi(plat)
    # A model that links only on near-certainty, so that a record with a name and a birth date alone
    # (no ID number, phone or address) lands between the thresholds.
    doc = orjson.loads(default_model().to_json())
    doc["link_threshold"], doc["review_threshold"] = 0.999999, 0.5
    service.use_model(MatchModel.from_json(orjson.dumps(doc)), store=False)
    a = store(plat, patient(given="秀英", sex="female", birth="1950-01-01", id_no=None, phone="13700000001"))
    b = store(
        plat,
        patient(
            given="秀英",
            sex="female",
            birth="1950-01-01",
            id_no=None,
            phone=None,
            village=None,
            mrn="urn:rhip:mrn:B",
        ),
    )
    with plat.db.read() as conn:
        items, total = sql.reviews(conn, "open", 10, 0)
        record = sql.get_record(conn, b)
    assert total == 1 and items[0].patient_id == b and items[0].master_id == master(plat, a)
    assert record is not None and record.state == "possible-match" and record.master_id != master(plat, a)
    manual.decide_review(service, items[0].id, "separate", "dr.wang")
    assert master(plat, a) != master(plat, b)
    with plat.db.read() as conn:
        assert b in sql.no_match_of(conn, a)
        assert sql.get_review(conn, items[0].id).status == "separate"
    # Sent again unchanged, B is not matched again; changed, it is matched but never joins A.
    plat.repository.update(
        "Patient",
        b,
        {
            **patient(
                given="秀英",
                sex="female",
                birth="1950-01-01",
                id_no=None,
                phone="13700000001",
                mrn="urn:rhip:mrn:B",
            ),
            "id": b,
        },
    )
    assert master(plat, a) != master(plat, b)


def test_relink_reloads_a_newer_version_and_keeps_its_master(settings: Settings) -> None:
    p = build(settings, online=False)
    try:
        service = empi(p)
        assert p.parser is not None
        a = store(p, patient(id_no=NUMBER))
        relink(service, export_resources(p.repository, p.parser, ["Patient"]))
        before = master(p, a)
        p.repository.update("Patient", a, {**patient(id_no=NUMBER, phone="13911119999"), "id": a})
        again = relink(service, export_resources(p.repository, p.parser, ["Patient"]))
        assert again.loaded == 1 and again.records == 1
        assert master(p, a) == before
        with p.db.read() as conn:
            row = sql.get_record(conn, a)
        assert row is not None and row.version == 2 and row.decoded().phones == ("13911119999",)
    finally:
        p.close()
