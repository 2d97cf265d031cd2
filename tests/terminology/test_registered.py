"""Reading back what the store holds for the terminology: registered dictionaries, and when to read again."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rhip.terminology.codesystems import CodeTableError, code_system_from_fhir
from rhip.terminology.following import StoreFollower
from rhip.terminology.registered import RegisteredSystems

URL = "urn:rhip:cs:local:4501:dept"


def dictionary(version: str, updated: str, *concepts: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": f"d{version}",
        "meta": {"lastUpdated": updated},
        "url": URL,
        "version": version,
        "title": "科室字典",
        "content": "complete",
        "concept": list(concepts),
    }


def test_a_fhir_code_system_reads_with_its_nesting_designations_and_status() -> None:
    cs = code_system_from_fhir(
        dictionary(
            "1",
            "2026-11-01T00:00:00Z",
            {
                "code": "03",
                "display": "内科",
                "designation": [{"language": "en", "value": "Internal medicine"}],
                "concept": [{"code": "0301", "display": "心血管内科"}],
            },
            {"code": "09", "display": "旧科室", "property": [{"code": "status", "valueCode": "retired"}]},
        )
    )
    assert cs.name == "科室字典" and cs.version == "1" and cs.content == "complete"
    assert cs.by_code["0301"].parent == "03" and cs.by_code["03"].display_en == "Internal medicine"
    assert cs.by_code["09"].retired and not cs.by_code["03"].retired
    with pytest.raises(CodeTableError, match="without a code"):
        code_system_from_fhir(dictionary("1", "x", {"display": "no code"}))
    with pytest.raises(CodeTableError, match="listed twice"):
        code_system_from_fhir(dictionary("1", "x", {"code": "A"}, {"code": "A"}))


def test_the_latest_stored_version_of_a_url_is_the_one_used() -> None:
    stored = [
        dictionary("2", "2026-11-02T00:00:00Z", {"code": "A", "concept": [{"code": "A1"}]}),
        dictionary("1", "2026-11-01T00:00:00Z", {"code": "OLD"}),
        {"resourceType": "CodeSystem", "id": "broken", "concept": []},  # no url: skipped
    ]
    registered = RegisteredSystems(lambda: stored)
    cs = registered.get(URL)
    assert cs is not None and cs.version == "2" and "OLD" not in cs.by_code
    assert registered.children(URL, "A") == ("A1",)
    assert registered.get("urn:nothing") is None


def test_the_follower_loads_first_after_a_change_and_when_stale() -> None:
    now = [0.0]
    loads: list[float] = []
    follower = StoreFollower(30, clock=lambda: now[0])
    follower.fresh(lambda: loads.append(now[0]))
    follower.fresh(lambda: loads.append(now[0]))
    assert loads == [0.0]
    now[0] = 29.0
    follower.fresh(lambda: loads.append(now[0]))
    assert loads == [0.0]
    follower.changed()
    follower.fresh(lambda: loads.append(now[0]))
    assert loads == [0.0, 29.0]
    now[0] = 60.0
    follower.fresh(lambda: loads.append(now[0]))
    assert loads == [0.0, 29.0, 60.0]


def test_a_change_told_during_a_load_is_loaded_again() -> None:
    follower = StoreFollower(30, clock=lambda: 0.0)
    loads = [0]

    def load() -> None:
        loads[0] += 1
        if loads[0] == 1:
            follower.changed()  # a map stored while the first load was reading

    follower.fresh(load)
    follower.fresh(load)
    assert loads[0] == 2


def test_a_stale_copy_is_used_while_another_thread_loads() -> None:
    now = [0.0]
    follower = StoreFollower(30, clock=lambda: now[0])
    follower.fresh(lambda: None)
    now[0] = 31.0
    entered, release = threading.Event(), threading.Event()
    loads = [0]

    def slow() -> None:
        loads[0] += 1
        entered.set()
        release.wait(5)

    loader = threading.Thread(target=follower.fresh, args=(slow,))
    loader.start()
    assert entered.wait(5)
    follower.fresh(slow)  # returns at once: stale, not changed, and a load is under way
    release.set()
    loader.join(5)
    assert loads[0] == 1
