"""Rebuilding the search index of stored resources: rows that are missing come back, nothing else changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from rhip.bootstrap.container import Platform, reindex_store
from rhip.core.errors import InvalidRequest
from rhip.fhir.repository import FhirRepository
from rhip.fhir.search.parse import SearchParser
from rhip.store.tables import INDEX_TABLES

HOSPITAL = {
    "resourceType": "Organization",
    "name": "绵阳市人民医院",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.5", "value": "510703H01"}],
}


def found(repo: FhirRepository, parser: SearchParser, rtype: str, *params: tuple[str, str]) -> list[str]:
    return [m.id for m in repo.search(parser.parse(rtype, list(params))).matches]


def forget_index(platform: Platform, pid: int) -> None:
    """What a resource stored before its search parameters existed looks like: no index rows at all."""
    with platform.db.write() as conn:
        for table in INDEX_TABLES.values():
            conn.execute(text(f"DELETE FROM {table.name} WHERE pid = :p"), {"p": pid})
        conn.execute(text("UPDATE resource SET index_mask = 0 WHERE pid = :p"), {"p": pid})


def test_reindex_brings_back_what_searches_need(
    platform: Platform, repo: FhirRepository, parser: SearchParser, sql: Callable[..., list[Any]]
) -> None:
    org = repo.create(dict(HOSPITAL))
    gone = repo.create({"resourceType": "Organization", "name": "已撤销卫生院"})
    repo.delete("Organization", gone.id)
    patient = repo.create({"resourceType": "Patient", "name": [{"family": "王"}]})
    assert found(repo, parser, "Organization", ("name", "绵阳")) == [org.id]
    (pid,) = sql("SELECT pid FROM resource WHERE res_id = :i", i=org.id)[0]
    forget_index(platform, pid)
    assert found(repo, parser, "Organization", ("name", "绵阳")) == []
    outbox_before = sql("SELECT count(*) FROM outbox")[0][0]

    done = reindex_store(platform, ["Organization"])

    assert done == {"Organization": 1}  # the deleted one is not indexed again
    assert found(repo, parser, "Organization", ("name", "绵阳")) == [org.id]
    assert found(repo, parser, "Organization", ("identifier", "urn:oid:2.16.156.10011.1.5|510703H01")) == [
        org.id
    ]
    assert found(repo, parser, "Organization", ("pinyin", "rmyy")) == [org.id]  # the registries' parameter
    assert sql("SELECT version FROM resource WHERE pid = :p", p=pid)[0][0] == 1  # no new version
    assert sql("SELECT count(*) FROM outbox")[0][0] == outbox_before  # no event
    assert found(repo, parser, "Patient", ("family", "王")) == [patient.id]  # other types untouched
    rows = sql("SELECT count(*) FROM idx_string WHERE pid = :p", p=pid)[0][0]

    again = reindex_store(platform, None)  # every type held: indexing twice changes nothing
    assert again == {"Organization": 1, "Patient": 1}
    assert found(repo, parser, "Organization", ("name", "绵阳")) == [org.id]
    assert sql("SELECT count(*) FROM idx_string WHERE pid = :p", p=pid)[0][0] == rows  # replaced, not added


def test_unknown_types_are_refused(platform: Platform) -> None:
    with pytest.raises(InvalidRequest, match="Organisation"):
        reindex_store(platform, ["Organisation"])
