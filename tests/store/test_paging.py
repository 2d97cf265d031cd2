"""Search paging stays stable while others write: keyset paging (unsorted) and cached lists (sorted)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.core.errors import InvalidRequest
from rhip.fhir.repository import FhirRepository, SearchPage
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.search.parse import SearchParser
from rhip.store.repository import SqlFhirRepository

LOINC = "http://loinc.org"
INITIAL = 120
COUNT = 25
START = datetime(2024, 1, 1, tzinfo=UTC)


def observation(subject: str, when: datetime, code: str = "8480-6", **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **elements,
    }


def when(i: int) -> datetime:
    """Distinct instants for the seeded Observations: the i-th one is i hours after START."""
    return START + timedelta(hours=i)


@pytest.fixture
def seeded(repo: FhirRepository) -> list[str]:
    """Patient p1 with INITIAL Observations (dates one hour apart, in creation order), and noise for p2."""
    with repo.transaction() as tx:
        tx.create({"resourceType": "Patient"}, id="p1")
        tx.create({"resourceType": "Patient"}, id="p2")
        created = [tx.create(observation("p1", when(i))).id for i in range(INITIAL)]
        for i in range(10):
            tx.create(observation("p2", when(i)))
    return created


def search(
    repo: FhirRepository, parser: SearchParser, params: list[tuple[str, str]], page: str | None = None
) -> SearchPage:
    extra = [("_page", page)] if page is not None else []
    return repo.search(parser.parse("Observation", [*params, *extra]))


def ids(page: SearchPage) -> list[str]:
    return [s.id for s in page.matches]


def page_all(
    repo: FhirRepository,
    parser: SearchParser,
    params: list[tuple[str, str]],
    between: Callable[[int, list[str]], None] = lambda _n, _seen: None,
) -> list[SearchPage]:
    """Every page of a search following ``next_page``; ``between(pages_so_far, seen_ids)`` runs before each next one."""
    pages = [search(repo, parser, params)]
    seen = ids(pages[0])
    while pages[-1].next_page is not None:
        between(len(pages), seen)
        pages.append(search(repo, parser, params, pages[-1].next_page))
        seen += ids(pages[-1])
        assert len(pages) < 50, "paging does not end"
    return pages


class Churn:
    """Writes between pages: new matches, deletions and updates of seen and unseen matches."""

    def __init__(self, repo: FhirRepository, initial: list[str]) -> None:
        self.repo = repo
        self.initial = initial
        self.created: set[str] = set()
        self.deleted_unseen: set[str] = set()
        self.deleted_seen: set[str] = set()
        self.updated: set[str] = set()

    def __call__(self, pages: int, seen: list[str]) -> None:
        repo, seen_set = self.repo, set(seen)
        gone = self.deleted_seen | self.deleted_unseen
        for k in range(3):  # new matches, dated after every seeded one (first in -date order)
            self.created.add(repo.create(observation("p1", when(1000 + 10 * pages + k))).id)
        unseen = [i for i in self.initial if i not in seen_set and i not in gone]
        seen_alive = [i for i in self.initial if i in seen_set and i not in gone]
        for rid in unseen[-2:]:
            repo.delete("Observation", rid)
            self.deleted_unseen.add(rid)
        if seen_alive:
            repo.delete("Observation", seen_alive[0])
            self.deleted_seen.add(seen_alive[0])
        # Updates that keep matching: one unseen (moved to the earliest date), one seen (moved to the latest).
        for rid, moved in ((unseen[0], START - timedelta(days=pages)), (seen_alive[-1], when(5000 + pages))):
            repo.update("Observation", rid, observation("p1", moved, id=rid, status="amended"))
            self.updated.add(rid)
        # Noise that does not match.
        repo.create(observation("p2", when(2000 + pages)))

    def check(self, pages: list[SearchPage]) -> None:
        seen = [i for p in pages for i in ids(p)]
        assert len(seen) == len(set(seen)), "a resource appeared twice"
        counts = {i: seen.count(i) for i in self.initial}
        survivors = set(self.initial) - self.deleted_seen - self.deleted_unseen
        assert {i for i in survivors if counts[i] != 1} == set(), "a resource was skipped"
        assert set(seen) & self.deleted_unseen == set(), "a deleted resource was shown"
        assert set(seen) & self.created == set(), "a resource created after the first page was shown"
        assert set(seen) <= set(self.initial)
        assert self.updated and self.deleted_unseen and self.deleted_seen and self.created


def test_unsorted_paging_is_stable_under_concurrent_writes(
    repo: FhirRepository, parser: SearchParser, seeded: list[str]
) -> None:
    params = [("patient", "p1"), ("_count", str(COUNT))]
    churn = Churn(repo, seeded)
    pages = page_all(repo, parser, params, churn)
    assert len(pages[0].matches) == COUNT
    assert pages[0].total is None  # more than one page, _total not asked
    assert pages[0].previous_page is None
    assert all(p.previous_page is not None for p in pages[1:])
    churn.check(pages)
    assert all(s.resource()["subject"]["reference"] == "Patient/p1" for p in pages for s in p.matches)


def test_unsorted_paging_without_writes_returns_each_match_once(
    repo: FhirRepository, parser: SearchParser, seeded: list[str]
) -> None:
    pages = page_all(repo, parser, [("patient", "p1"), ("_count", str(COUNT))])
    assert [len(p.matches) for p in pages] == [25, 25, 25, 25, 20]
    assert sorted(i for p in pages for i in ids(p)) == sorted(seeded)
    assert pages[-1].next_page is None


def test_unsorted_previous_links_retrace_the_pages(
    repo: FhirRepository, parser: SearchParser, seeded: list[str]
) -> None:
    params = [("patient", "p1"), ("_count", str(COUNT))]
    forward = page_all(repo, parser, params)
    # New matches while walking back do not enter the pages either.
    repo.create(observation("p1", when(9999)))
    back = [forward[-1]]
    while back[-1].previous_page is not None:
        back.append(search(repo, parser, params, back[-1].previous_page))
        assert len(back) < 50
    back.reverse()
    assert [ids(p) for p in back] == [ids(p) for p in forward]
    # From a page reached backwards, next goes forward again.
    second = back[1]
    assert second.next_page is not None
    assert ids(search(repo, parser, params, second.next_page)) == ids(forward[2])


def test_sorted_paging_is_stable_under_concurrent_writes(
    repo: FhirRepository, parser: SearchParser, seeded: list[str]
) -> None:
    params = [("patient", "p1"), ("_sort", "-date"), ("_count", str(COUNT))]
    churn = Churn(repo, seeded)
    pages = page_all(repo, parser, params, churn)
    churn.check(pages)
    assert pages[0].total == INITIAL
    # The order is that of the first request: newest first, updates do not move resources between pages.
    seen = [i for p in pages for i in ids(p)]
    untouched = [i for i in seen if i not in churn.updated]
    position = {rid: n for n, rid in enumerate(seeded)}
    assert untouched == sorted(untouched, key=lambda r: -position[r])
    assert ids(pages[0]) == list(reversed(seeded))[:COUNT]


def test_sorted_previous_links(repo: FhirRepository, parser: SearchParser, seeded: list[str]) -> None:
    params = [("patient", "p1"), ("_sort", "date"), ("_count", str(COUNT))]
    forward = page_all(repo, parser, params)
    assert [i for p in forward for i in ids(p)] == seeded  # ascending date = creation order
    assert forward[0].previous_page is None
    back = [forward[-1]]
    while back[-1].previous_page is not None:
        back.append(search(repo, parser, params, back[-1].previous_page))
        assert len(back) < 50
    back.reverse()
    assert [ids(p) for p in back] == [ids(p) for p in forward]


def test_sorted_search_of_one_page_has_no_links(
    repo: FhirRepository, parser: SearchParser, seeded: list[str]
) -> None:
    page = search(repo, parser, [("patient", "p2"), ("_sort", "-date")])
    assert len(page.matches) == 10
    assert (page.total, page.next_page, page.previous_page) == (10, None, None)


def test_total_accurate(repo: FhirRepository, parser: SearchParser, seeded: list[str]) -> None:
    base = [("patient", "p1"), ("_count", str(COUNT))]
    assert search(repo, parser, base).total is None
    first = search(repo, parser, [*base, ("_total", "accurate")])
    assert first.total == INITIAL
    repo.delete("Observation", seeded[-1])
    second = search(repo, parser, [*base, ("_total", "accurate")], first.next_page)
    assert second.total == INITIAL - 1
    assert search(repo, parser, [*base, ("_sort", "-date"), ("_total", "accurate")]).total == INITIAL - 1
    assert search(repo, parser, [("patient", "p2"), ("_total", "none")]).total is None
    assert search(repo, parser, [("patient", "p2")]).total == 10
    counted = search(repo, parser, [("patient", "p1"), ("_summary", "count")])
    assert (counted.total, counted.matches) == (INITIAL - 1, [])
    assert repo.count(parser.parse("Observation", [("patient", "p1")])) == INITIAL - 1


def test_invalid_page_token(platform: Platform, repo: FhirRepository, parser: SearchParser) -> None:
    tokens = ["garbage", "k.1.2", "q..1.0", "k..one.0", "k..1.2.3", "c.no-such-search.25.0", "..."]
    for token in tokens:
        with pytest.raises(InvalidRequest) as err:
            search(repo, parser, [("patient", "p1")], token)
        assert err.value.http_status == 400
        response = platform.fhir.handle(FhirRequest("GET", "Observation", query=[("_page", token)]))
        assert response.status == 400, token


def test_out_of_range_page_token_is_a_client_error(platform: Platform, seeded: list[str]) -> None:
    """A tampered ``_page`` is the client's error (400), never an exception escaping as a 500."""
    outcomes = {}
    for token in ("k..99999999999999999999.0", "k..1.99999999999999999999", "p..-99999999999999999999.0"):
        request = FhirRequest("GET", "Observation", query=[("patient", "p1"), ("_page", token)])
        try:
            outcomes[token] = str(platform.fhir.handle(request).status)
        except Exception as exc:
            outcomes[token] = type(exc).__name__
    assert {t: o for t, o in outcomes.items() if o not in ("200", "400")} == {}


def test_page_token_of_another_search_type_does_not_leak_its_resources(
    repo: FhirRepository, parser: SearchParser, seeded: list[str]
) -> None:
    """A cached (sorted) page token from an Observation search, replayed on a Patient search."""
    first = search(repo, parser, [("_sort", "-date"), ("_count", "10")])
    assert first.next_page is not None
    try:
        page = repo.search(parser.parse("Patient", [("_sort", "_id"), ("_page", first.next_page)]))
    except InvalidRequest:
        return
    assert {s.resource_type for s in page.matches} <= {"Patient"}


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


def test_sorted_paging_links_expire_after_an_hour(
    platform: Platform, parser: SearchParser, seeded: list[str]
) -> None:
    """docs/fhir-api.md (Paging): sorted result lists are kept for an hour; later pages then say so."""
    store = platform.repository
    assert isinstance(store, SqlFhirRepository)
    clock = Clock()
    repo = SqlFhirRepository(dataclasses.replace(store.ctx, clock=clock))
    params = [("patient", "p1"), ("_sort", "-date"), ("_count", str(COUNT))]
    first = search(repo, parser, params)
    clock.moment += timedelta(minutes=59)
    assert len(search(repo, parser, params, first.next_page).matches) == COUNT
    clock.moment += timedelta(minutes=2)
    with pytest.raises(InvalidRequest):
        search(repo, parser, params, first.next_page)


def test_paging_through_the_rest_api(platform: Platform, seeded: list[str]) -> None:
    query = [("patient", "p1"), ("_count", str(COUNT)), ("_total", "accurate")]
    seen: list[str] = []
    bundles = 0
    request = FhirRequest("GET", "Observation", query=query, base_url="http://rhip.test/fhir")
    while True:
        response = platform.fhir.handle(request)
        assert response.status == 200
        assert response.body is not None
        bundle = orjson.loads(response.body)
        bundles += 1
        assert bundle["type"] == "searchset"
        assert bundle["total"] == INITIAL
        relations = {link["relation"]: link["url"] for link in bundle["link"]}
        assert ("previous" in relations) == (bundles > 1)
        seen += [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        if "next" not in relations:
            break
        url = urlsplit(relations["next"])
        assert url.path == "/fhir/Observation"
        request = FhirRequest(
            "GET", "Observation", query=parse_qsl(url.query), base_url="http://rhip.test/fhir"
        )
        assert bundles < 50
    assert bundles == 5
    assert sorted(seen) == sorted(seeded)
