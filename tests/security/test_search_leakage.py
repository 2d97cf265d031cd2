"""What a search can leak, it does not: population searches, _include, _revinclude, _has, counts, paging."""

from __future__ import annotations

import orjson

from rhip.bootstrap.container import Platform

from .matrix_support import Accounts, Region, bearer, client_for, ids_of


def _get(client: object, path: str, token: str) -> object:
    return client.get(path, headers=bearer(token))  # type: ignore[attr-defined]


def test_population_search_sees_only_cared_for_residents(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    obs = {k: f"Observation/{v}" for k, v in region.observations.items()}
    with client_for(platform) as client:
        seen = ids_of(
            _get(
                client, "/fhir/Observation?code=http://loinc.org|8480-6", accounts.tokens["clinician"]
            ).content
        )  # type: ignore[attr-defined]
        assert seen == {obs["own"], obs["related"]}
        count = _get(
            client,
            "/fhir/Observation?code=http://loinc.org|8480-6&_summary=count",
            accounts.tokens["clinician"],
        )
        assert orjson.loads(count.content)["total"] == 2  # type: ignore[attr-defined]
        total = _get(
            client,
            "/fhir/Observation?code=http://loinc.org|8480-6&_total=accurate",
            accounts.tokens["clinician"],
        )
        assert orjson.loads(total.content)["total"] == 2  # type: ignore[attr-defined]
        everything = ids_of(
            _get(client, "/fhir/Observation?code=http://loinc.org|8480-6", accounts.tokens["admin"]).content
        )  # type: ignore[attr-defined]
        assert everything == set(obs.values())
        cdc = ids_of(
            _get(
                client, "/fhir/Observation?code=http://loinc.org|8480-6", accounts.tokens["public-health"]
            ).content
        )  # type: ignore[attr-defined]
        assert cdc == {obs["own"], obs["related"]}
        mine = ids_of(_get(client, "/fhir/Observation", accounts.tokens["resident"]).content)  # type: ignore[attr-defined]
        assert mine == {obs["own"]}


def test_statistician_counts_but_never_lists(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, _, accounts = secured
    with client_for(platform) as client:
        count = _get(
            client,
            "/fhir/Observation?code=http://loinc.org|8480-6&_summary=count",
            accounts.tokens["statistician"],
        )
        assert orjson.loads(count.content)["total"] == 3  # type: ignore[attr-defined]
        listed = _get(
            client, "/fhir/Observation?code=http://loinc.org|8480-6", accounts.tokens["statistician"]
        )
        assert listed.status_code == 403  # type: ignore[attr-defined]
        assert _get(client, "/fhir/Patient?gender=female", accounts.tokens["statistician"]).status_code == 403  # type: ignore[attr-defined]


def test_revinclude_and_include_are_filtered(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    token = accounts.tokens["clinician"]
    with client_for(platform) as client:
        # The patient directory finds any resident it is asked for by name or identifier (demographics) ...
        found = ids_of(_get(client, "/fhir/Patient?name=测试", token).content)  # type: ignore[attr-defined]
        assert {f"Patient/{p}" for p in region.patients.values()} <= found
        # ... but it does not list everyone: without a name or identifier it is a population search.
        listed = ids_of(_get(client, "/fhir/Patient?gender=female", token).content)  # type: ignore[attr-defined]
        assert f"Patient/{region.patients['other']}" not in listed
        # ... but asking for their clinical data with it leaves the directory: only cared-for residents.
        with_obs = ids_of(
            _get(client, "/fhir/Patient?name=测试&_revinclude=Observation:subject", token).content
        )  # type: ignore[attr-defined]
        assert f"Observation/{region.observations['other']}" not in with_obs
        assert f"Patient/{region.patients['other']}" not in with_obs
        assert f"Observation/{region.observations['related']}" in with_obs
        # _include from what may be seen never pulls in what may not.
        included = ids_of(
            _get(
                client, "/fhir/Observation?code=http://loinc.org|8480-6&_include=Observation:subject", token
            ).content
        )  # type: ignore[attr-defined]
        assert f"Patient/{region.patients['other']}" not in included
        assert f"Patient/{region.patients['related']}" in included


def test_has_and_chains_through_clinical_data_are_refused(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, _, accounts = secured
    with client_for(platform) as client:
        for role in ("clinician", "system", "public-health", "resident"):
            response = _get(
                client, "/fhir/Patient?_has:Condition:subject:code=F32.900", accounts.tokens[role]
            )
            assert response.status_code == 403, role  # type: ignore[attr-defined]
            chained = _get(client, "/fhir/Observation?encounter.status=finished", accounts.tokens[role])
            assert chained.status_code == 403, role  # type: ignore[attr-defined]
        admin = _get(client, "/fhir/Patient?_has:Condition:subject:code=F32.900", accounts.tokens["admin"])
        assert admin.status_code == 200  # type: ignore[attr-defined]


def test_paging_links_belong_to_their_caller(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, _, accounts = secured
    with client_for(platform) as client:
        first = orjson.loads(
            _get(client, "/fhir/Observation?_count=1&_sort=date", accounts.tokens["admin"]).content
        )  # type: ignore[attr-defined]
        following = next(link["url"] for link in first["link"] if link["relation"] == "next")
        path = following.split("8080", 1)[1]
        assert _get(client, path, accounts.tokens["admin"]).status_code == 200  # type: ignore[attr-defined]
        stolen = _get(client, path, accounts.tokens["clinician"])
        assert stolen.status_code == 400  # type: ignore[attr-defined]
