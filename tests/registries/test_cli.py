"""``rhip registries import|export`` against the database of a running server, checked with fhirpy."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fhirpy import SyncFHIRClient

from rhip.registries.identifiers import INSTITUTION_CODE, PRACTITIONER_LICENCE
from rhip.synth.codes import uscc

from .conftest import run_cli

pytestmark = pytest.mark.integration
GOOD = uscc("510704", "45081234")
BAD = GOOD[:17] + ("0" if GOOD[17] != "0" else "1")


def test_import_creates_updates_refuses_and_export_gives_it_back(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = served
    client = SyncFHIRClient(url, requests_config={"timeout": 30})
    orgs = tmp_path / "orgs.csv"
    orgs.write_text(
        "code,name,uscc,kind,division,parent,active\n"
        "C100,游仙区卫生健康局,,commission,510704,,true\n"
        f"C101,游仙区魏城镇卫生院,{GOOD},thc,510704105,C100,是\n"
        f"C102,游仙区某卫生室,{BAD},village,510704105201,C101,true\n"
        "C103,游仙区新桥镇卫生院,,thc,510704106,NOPE,true\n"
        "C104,自己的上级,,thc,,C104,true\n",
        encoding="utf-8",
    )
    done = run_cli(env, "registries", "import", "--type", "Organization", str(orgs))
    assert done.returncode == 1, done.stderr.decode()  # some rows were refused
    report = done.stdout.decode()
    assert "2 created, 0 updated, 3 refused" in done.stderr.decode()
    assert "check character" in report and "parent's code" in report
    child = client.resources("Organization").search(identifier=f"{INSTITUTION_CODE}|C101").fetch_all()
    assert [c["partOf"]["reference"] for c in child] == ["Organization/org-C100"]
    assert [o.id for o in client.resources("Organization").search(pinyin="weichengzhen").fetch_all()] == [
        "org-C101"
    ]
    again = run_cli(env, "registries", "import", "-t", "Organization", str(orgs))
    assert "0 created, 2 updated, 3 refused" in again.stderr.decode()

    exported = run_cli(env, "registries", "export", "--type", "Organization")
    assert exported.returncode == 0, exported.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(exported.stdout.decode("utf-8-sig"))))
    by_code = {r["code"]: r for r in rows}
    assert by_code["C101"]["parent"] == "C100" and by_code["C101"]["uscc"] == GOOD
    assert by_code["C101"]["division"] == "510704105" and by_code["C101"]["kind"] == "thc"
    assert "C102" not in by_code and "C103" not in by_code


def test_practitioners_get_their_post_at_the_institution(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = served
    client = SyncFHIRClient(url, requests_config={"timeout": 30})
    orgs = tmp_path / "orgs.csv"
    orgs.write_text("code,name\nC200,测试医院\n", encoding="utf-8")
    assert run_cli(env, "registries", "import", str(orgs)).returncode == 0
    people = tmp_path / "people.csv"
    people.write_text(
        "licence,name,family,given,gender,institution_code,department,title,role_start,role_end\n"
        "110510704000201,赵一,赵,一,male,C200,全科,主治医师,2019-09-01,\n"
        "110510704000202,钱二,钱,二,female,,,,2019-09-01,\n"
        "110510704000203,孙三,孙,三,female,C200,,,2020-01-01,2019-12-31\n",
        encoding="utf-8",
    )
    done = run_cli(env, "registries", "import", "--type", "Practitioner", str(people))
    assert "1 created, 0 updated, 2 refused" in done.stderr.decode()
    assert done.stdout.decode().count("a post's dates") == 2
    found = client.resources("Practitioner").search(identifier=f"{PRACTITIONER_LICENCE}|110510704000201")
    practitioner = found.fetch_all()[0]
    roles = (
        client.resources("PractitionerRole")
        .search(practitioner=f"Practitioner/{practitioner.id}")
        .fetch_all()
    )
    assert [r["organization"]["reference"] for r in roles] == ["Organization/org-C200"]
    assert roles[0]["period"] == {"start": "2019-09-01"}
    assert [
        r.id
        for r in client.resources("PractitionerRole")
        .search(date="le2020-01-01", organization="Organization/org-C200")
        .fetch_all()
    ] == [roles[0].id]
    # The post ends: the same row with an end date updates the role.
    people.write_text(
        "licence,name,institution_code,role_end\n110510704000201,赵一,C200,2025-06-30\n", encoding="utf-8"
    )
    assert run_cli(env, "registries", "import", "-t", "Practitioner", str(people)).returncode == 0
    role = client.reference("PractitionerRole", roles[0].id).to_resource()
    assert role["period"] == {"start": "2019-09-01", "end": "2025-06-30"} and role["specialty"] == [
        {"text": "全科"}
    ]
    out = tmp_path / "people-out.csv"
    assert run_cli(env, "registries", "export", "-t", "Practitioner", "--out", str(out)).returncode == 0
    rows = {r["licence"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")))}
    exported = rows["110510704000201"]
    assert (exported["name"], exported["institution_code"], exported["department"]) == (
        "赵一",
        "C200",
        "全科",
    )
    assert (exported["role_start"], exported["role_end"]) == ("2019-09-01", "2025-06-30")


def test_unreadable_files_and_unknown_types_are_one_message(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    _, env = served
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("code,name\nX1,测试医院\n".encode("gbk"))
    done = run_cli(env, "registries", "import", str(gbk))
    assert done.returncode == 2 and "not UTF-8" in done.stderr.decode()
    missing = tmp_path / "missing.csv"
    missing.write_text("name\nA\n", encoding="utf-8")
    done = run_cli(env, "registries", "import", str(missing))
    assert done.returncode == 2 and "columns are missing: code" in done.stderr.decode()
    done = run_cli(env, "registries", "export", "--type", "Patient")
    assert done.returncode == 2 and "one of Organization, Practitioner, Location" in done.stderr.decode()


def test_places_and_services_are_keyed_by_their_institution_and_code(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = served
    client = SyncFHIRClient(url, requests_config={"timeout": 30})
    orgs = tmp_path / "orgs.csv"
    orgs.write_text("code,name\nC300,测试卫生院\nC301,另一卫生院\n", encoding="utf-8")
    assert run_cli(env, "registries", "import", str(orgs)).returncode == 0
    places = tmp_path / "places.csv"
    places.write_text(
        "institution_code,code,name,type,partof,division,status\n"
        "C300,B1,门诊楼,,,510704105,active\n"
        "C300,K01,预防接种门诊,50,B1,510704105,\n"
        "C301,K01,预防接种门诊,50,,,active\n"  # the same code at another institution: another place
        "C300,K02,无此楼,,B9,,active\n"
        "C300,K03,停用科室,,,,closed\n"
        "C999,K01,无此机构,,,,\n",
        encoding="utf-8",
    )
    done = run_cli(env, "registries", "import", "--type", "Location", str(places))
    assert done.returncode == 1
    assert "3 created, 0 updated, 3 refused" in done.stderr.decode()
    report = done.stdout.decode()
    assert "no place with this code" in report and "active, suspended or inactive" in report
    assert "no institution has this code" in report
    found = client.resources("Location").search(organization="Organization/org-C300").fetch_all()
    assert sorted(r.id for r in found) == ["loc-C300-B1", "loc-C300-K01"]
    clinic = client.reference("Location", "loc-C300-K01").to_resource()
    assert clinic["partOf"]["reference"] == "Location/loc-C300-B1" and clinic["status"] == "active"
    assert [
        r.id for r in client.resources("Location").search(pinyin="yfjzmz", division="510704").fetch_all()
    ] == ["loc-C300-K01"]
    services = tmp_path / "services.csv"
    services.write_text(
        "institution_code,code,name,category,location,active\n"
        "C300,S1,儿童预防接种,18,K01,true\n"
        "C300,S2,无此科室的服务,18,K99,true\n",
        encoding="utf-8",
    )
    done = run_cli(env, "registries", "import", "-t", "HealthcareService", str(services))
    assert "1 created, 0 updated, 1 refused" in done.stderr.decode()
    service = client.resources("HealthcareService").search(organization="Organization/org-C300").fetch_all()
    assert [s["location"][0]["reference"] for s in service] == ["Location/loc-C300-K01"]

    exported = run_cli(env, "registries", "export", "--type", "Location")
    rows = {
        (r["institution_code"], r["code"]): r
        for r in csv.DictReader(io.StringIO(exported.stdout.decode("utf-8-sig")))
    }
    assert rows[("C300", "K01")]["partof"] == "B1" and rows[("C300", "K01")]["type"] == "50"
    assert rows[("C300", "K01")]["division"] == "510704105" and ("C301", "K01") in rows
    exported = run_cli(env, "registries", "export", "--type", "HealthcareService")
    text = exported.stdout.decode("utf-8-sig")
    assert text.splitlines()[0] == "institution_code,code,name,category,location,active"
    assert "C300,S1,儿童预防接种,18,K01,true" in text


def test_check_lists_what_was_stored_before_the_rules(tmp_path: Path) -> None:
    import dataclasses

    from rhip.bootstrap.container import build_platform
    from rhip.bootstrap.settings import Settings
    from rhip.registries.identifiers import USCC
    from rhip.store.repository import SqlFhirRepository

    from .conftest import server_env

    env = server_env(f"sqlite:///{tmp_path}/old.db")
    assert run_cli(env, "db", "upgrade").returncode == 0
    platform = build_platform(
        Settings(database_url=f"sqlite:///{tmp_path}/old.db"), empi=False, exchange=False
    )
    try:
        # A store as it was before the registries' rules: no preparer.
        assert isinstance(platform.store, SqlFhirRepository)
        old_store = SqlFhirRepository(dataclasses.replace(platform.store.ctx, preparer=None))
        bad = {"resourceType": "Organization", "name": "旧数据",
               "identifier": [{"system": USCC, "value": "91350100M000100Y44"}]}  # fmt: skip
        old_store.create(bad, id="old-1", put=True)
    finally:
        platform.close()
    done = run_cli(env, "registries", "check")
    assert done.returncode == 1, done.stdout.decode() + done.stderr.decode()
    assert "Organization/old-1" in done.stdout.decode() and "check character" in done.stdout.decode()
    assert "1 Organization resources break a rule" in done.stderr.decode()
    assert run_cli(env, "registries", "check", "--type", "Practitioner").returncode == 0


def test_a_new_row_never_overwrites_a_resource_that_has_its_id_already(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = served
    client = SyncFHIRClient(url, requests_config={"timeout": 30})
    client.resource("Organization", id="org-C400", name="有此 id 而无此代码的机构").save()
    orgs = tmp_path / "orgs.csv"
    orgs.write_text("code,name\nC400,新机构\n", encoding="utf-8")
    done = run_cli(env, "registries", "import", str(orgs))
    assert done.returncode == 0 and "created" in done.stdout.decode()
    assert client.reference("Organization", "org-C400").to_resource()["name"] == "有此 id 而无此代码的机构"
    created = client.resources("Organization").search(identifier=f"{INSTITUTION_CODE}|C400").fetch_all()
    assert [o["name"] for o in created] == ["新机构"] and created[0].id != "org-C400"
