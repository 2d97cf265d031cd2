"""The exchange's PatientMerger over the resident index joins two persons, also before they were matched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from empi.factory import id_number, patient
from rhip.bootstrap.adapters import EmpiPatientMerger
from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.core.errors import Conflict
from rhip.db.migrate import upgrade
from rhip.empi import manual
from rhip.empi.queries import master_of


def _platform(settings: Settings, online: bool) -> Platform:
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    return build_platform(settings, empi_online=online)


@pytest.fixture(params=[True, False], ids=["online", "offline"])
def plat(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Platform]:
    p = _platform(settings, request.param)
    try:
        yield p
    finally:
        p.close()


def _store(p: Platform, **kwargs: object) -> str:
    body = {k: v for k, v in patient(**kwargs).items() if k != "id"}  # type: ignore[arg-type]
    return p.repository.create(body).id


def test_merge_puts_both_records_under_one_master(plat: Platform) -> None:
    assert plat.empi is not None
    a = _store(plat, family="王", given="芳", birth="1980-01-02", id_no=id_number("510703", "19800102", 1))
    b = _store(plat, family="李", given="强", birth="1975-05-06", id_no=id_number("510703", "19750506", 3))
    merger = EmpiPatientMerger(plat.empi)
    merger.merge(a, b, actor="v2:510725H01")
    assert master_of(plat.empi, a)["id"] == master_of(plat.empi, b)["id"]
    merger.merge(a, b, actor="v2:510725H01")  # a repeated merge changes nothing
    assert master_of(plat.empi, a)["id"] == master_of(plat.empi, b)["id"]


def test_merge_refuses_what_a_person_decided_apart(settings: Settings) -> None:
    p = _platform(settings, True)
    try:
        assert p.empi is not None
        b = _store(p, family="李", given="强", birth="1975-05-06", id_no=id_number("510703", "19750506", 3))
        c = _store(p, family="赵", given="敏", birth="1990-03-04", id_no=id_number("510703", "19900304", 2))
        manual.merge(p.empi, master_of(p.empi, b)["id"], master_of(p.empi, c)["id"], "operator")
        manual.unlink(p.empi, b, "operator")  # b is now decided not to be c
        with pytest.raises(Conflict):
            EmpiPatientMerger(p.empi).merge(c, b, actor="v2:510725H01")
    finally:
        p.close()
