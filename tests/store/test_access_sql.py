"""The SQL of a security filter is built once per filter and merged into each statement that uses it."""

from __future__ import annotations

from rhip.fhir.search.params import registry
from rhip.fhir.search.query import AccessFilter
from rhip.store.query import SqlSearch


def _filter(**kwargs: object) -> AccessFilter:
    params = registry()
    security, source = params.get("Observation", "_security"), params.get("Observation", "_source")
    assert security is not None and source is not None
    return AccessFilter(security, source, **kwargs)  # type: ignore[arg-type]


def test_the_same_filter_gives_the_same_sql_in_every_statement() -> None:
    access = _filter(open_outside=False, compartments=("p1", "p2"), hidden_codes=("R", "V"))
    first, second = SqlSearch("sqlite"), SqlSearch("sqlite")
    second.sql.bind("before")  # the statement's own placeholders come first
    text1 = first.access_condition(access, "Observation", "d.pid")
    text2 = second.access_condition(access, "Observation", "d.pid")
    assert text1 == text2
    assert {k: v for k, v in second.sql.params.items() if k.startswith("a")} == first.sql.params
    assert second.sql.params["p0"] == "before"
    # Placeholders the statement binds later do not collide with the fragment's.
    later = second.sql.bind("after")
    assert second.sql.params[later.removeprefix(":")] == "after"
    assert all(k.startswith("a") for k in first.sql.params)


def test_a_different_filter_gives_its_own_sql() -> None:
    one = SqlSearch("sqlite").access_condition(_filter(compartments=("p1",)), "Observation", "d.pid")
    other_search = SqlSearch("sqlite")
    other = other_search.access_condition(_filter(compartments=("p9", "p8")), "Observation", "d.pid")
    assert one != other and sorted(other_search.sql.params.values()) == ["p8", "p9"]


def test_postgresql_placeholders() -> None:
    search = SqlSearch("postgresql")
    text = search.access_condition(_filter(compartments=("p1", "p2")), "Observation", "r.pid")
    assert "%(a0)s" in text and search.sql.params == {"a0": "p1", "a1": "p2"}
