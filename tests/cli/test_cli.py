"""The ``rhip`` command line, run as a subprocess on a temporary SQLite database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from rhip import __version__
from rhip.db.migrate import head_revision
from rhip.terminology.codesystems import builtin_code_systems

ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"


class Cli:
    """Runs ``python -m rhip.cli.main`` against one database."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir = workdir
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RHIP_") or k.startswith("RHIP_SECURITY__")
        }  # the suite's security setting (tests/conftest.py) stays
        self.env.update(
            RHIP_DATABASE_URL=database_url,
            COLUMNS="200",  # rich wraps tables to the terminal width
            NO_COLOR="1",
            TERM="dumb",
            PYTHONUNBUFFERED="1",
        )

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one command; stdout and stderr are both captured."""
        return subprocess.run(
            [sys.executable, "-m", "rhip.cli.main", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def output(result: subprocess.CompletedProcess[str]) -> str:
    """Everything a command printed."""
    return result.stdout + result.stderr


def flat(text: str) -> str:
    """``text`` with all runs of white space made one space (rich wraps table titles)."""
    return " ".join(text.split())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The CLI on a fresh (empty, not migrated) SQLite database."""
    return Cli(tmp_path, f"sqlite:///{tmp_path}/rhip.db")


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated once by ``rhip db upgrade``, copied for each test that needs one."""
    folder = tmp_path_factory.mktemp("template")
    result = Cli(folder, f"sqlite:///{folder}/rhip.db")("db", "upgrade")
    assert result.returncode == 0, output(result)
    return folder


@pytest.fixture
def migrated(cli: Cli, template_db: Path, tmp_path: Path) -> Cli:
    """The CLI on a migrated, empty database (a copy of the template)."""
    for f in template_db.glob("rhip.db*"):
        shutil.copyfile(f, tmp_path / f.name)
    return cli


def write_ndjson(path: Path, lines: list[Any]) -> Path:
    """Write resources (or raw byte lines) as NDJSON."""
    path.write_bytes(
        b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)
    )
    return path


def table_rows(text: str) -> list[list[str]]:
    """The cells of the rows of the import summary table."""
    return [line.replace("│", " ").split() for line in text.splitlines() if line.startswith("│")]


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    """The resources of an NDJSON file."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def patient(rid: str, family: str, given: str, id_number: str, **extra: Any) -> dict[str, Any]:
    """A Patient with a Chinese name and a resident ID number."""
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": [{"system": ID_SYSTEM, "value": id_number}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        **extra,
    }


# -- version and db -----------------------------------------------------------------------------------
def test_version(migrated: Cli) -> None:
    result = migrated("version")
    assert result.returncode == 0, output(result)
    assert f"rhip {__version__}" in result.stdout
    assert "FHIR 4.0.1" in result.stdout
    assert f"schema {head_revision()}" in result.stdout


def test_version_without_a_reachable_database(tmp_path: Path) -> None:
    cli = Cli(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    result = cli("version")
    assert result.returncode == 0, output(result)
    assert f"rhip {__version__}" in result.stdout
    assert "unavailable" in result.stdout


def test_db_upgrade_is_idempotent_and_current_reports_it(cli: Cli) -> None:
    before = cli("db", "current")
    assert before.returncode == 0, output(before)
    assert before.stdout.strip() == "empty"
    for _ in range(2):
        result = cli("db", "upgrade")
        assert result.returncode == 0, output(result)
        assert f"database at revision {head_revision()}" in result.stdout
    after = cli("db", "current")
    assert after.returncode == 0, output(after)
    assert after.stdout.strip() == head_revision()


# -- sample, import, export ---------------------------------------------------------------------------
def test_sample_import_and_export(migrated: Cli, tmp_path: Path) -> None:
    sample_dir = tmp_path / "sample"
    made = migrated("sample", "--residents", "5", "--out", str(sample_dir))
    assert made.returncode == 0, output(made)
    files = sorted(p.name for p in sample_dir.iterdir())
    assert files == ["1-organizations.ndjson", "2-residents.ndjson"]
    written = [r for f in sorted(sample_dir.iterdir()) for r in read_ndjson(f)]
    by_type: dict[str, int] = {}
    for r in written:
        by_type[r["resourceType"]] = by_type.get(r["resourceType"], 0) + 1
    assert by_type["Patient"] == 5

    imported = migrated("import", str(sample_dir))
    text = output(imported)
    assert imported.returncode == 0, text
    assert f"Imported {len(written)} resources from 2 file(s)" in flat(text)
    assert sorted(table_rows(text)) == sorted([rtype, str(n)] for rtype, n in by_type.items())
    assert "rejected" not in text

    again = migrated("import", str(sample_dir))  # ids are kept: importing twice stores new versions
    assert again.returncode == 0, output(again)

    out = tmp_path / "export"
    exported = migrated("export", "--type", "Patient", "--out", str(out))
    assert exported.returncode == 0, output(exported)
    assert "exported 5 resources" in output(exported)
    assert sorted(p.name for p in out.iterdir()) == ["Patient.ndjson"]
    patients = read_ndjson(out / "Patient.ndjson")
    assert sorted(p["id"] for p in patients) == sorted(
        r["id"] for r in written if r["resourceType"] == "Patient"
    )
    assert all(p["resourceType"] == "Patient" and p["meta"]["versionId"] == "2" for p in patients)
    source = {r["id"]: r for r in written if r["resourceType"] == "Patient"}
    for p in patients:
        assert p["name"] == source[p["id"]]["name"]


def test_export_several_types(migrated: Cli, tmp_path: Path) -> None:
    data = write_ndjson(
        tmp_path / "data.ndjson",
        [
            patient("p1", "王", "伟", "110101199001010011"),
            {"resourceType": "Organization", "id": "o1", "name": "西湖区卫生院"},
        ],
    )
    assert migrated("import", str(data)).returncode == 0
    out = tmp_path / "export"
    exported = migrated("export", "--type", "Patient,Organization,Observation", "--out", str(out))
    assert exported.returncode == 0, output(exported)
    assert sorted(p.name for p in out.iterdir()) == ["Organization.ndjson", "Patient.ndjson"]
    assert [r["name"] for r in read_ndjson(out / "Organization.ndjson")] == ["西湖区卫生院"]


def test_export_of_an_unknown_type_is_refused(migrated: Cli, tmp_path: Path) -> None:
    result = migrated("export", "--type", "Patient,Patientt", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "Patientt" in output(result)


def test_import_reports_rejections_without_their_content(migrated: Cli, tmp_path: Path) -> None:
    data = write_ndjson(
        tmp_path / "mixed.ndjson",
        [
            patient("good-1", "王", "秀英", "110101198001010011"),
            b'{"resourceType":"Patient","id":"bad-json","name":[{"family":"\xe8\xb5\xb5","given":["\xe6\x95\x8f"]}],"identifier":[{"value":"110101198001010022"',
            patient("bad-element", "钱", "多多", "110101198001010033", nickname="钱多多"),
            {
                "id": "no-type",
                "name": [{"family": "孙", "given": ["悟空"]}],
                "identifier": [{"value": "110101198001010044"}],
            },
            patient("good-2", "李", "娜", "110101198001010055"),
        ],
    )
    result = migrated("import", str(data))
    text = output(result)
    assert result.returncode == 1, text
    assert "Imported 2 resources from 1 file(s)" in flat(text)
    assert "3 rejected" in text
    lines = text.splitlines()
    assert any(":2 " in line and "RHIP-FHIR-0001" in line and "JSON" in line for line in lines), text
    assert any(":3 " in line and "RHIP-FHIR-0004" in line and "Patient.nickname" in line for line in lines), (
        text
    )
    assert any(":4 " in line and "RHIP-FHIR-0001" in line and "resourceType" in line for line in lines), text
    for secret in (
        "赵",
        "敏",
        "钱",
        "多多",
        "孙",
        "悟空",
        "110101198001010022",
        "110101198001010033",
        "110101198001010044",
    ):
        assert secret not in text, secret
    out = tmp_path / "export"
    assert migrated("export", "--type", "Patient", "--out", str(out)).returncode == 0
    assert sorted(p["id"] for p in read_ndjson(out / "Patient.ndjson")) == ["good-1", "good-2"]


def test_import_side_by_side_gives_what_one_process_gives(migrated: Cli, tmp_path: Path) -> None:
    data = tmp_path / "folder"
    data.mkdir()
    write_ndjson(
        data / "a.ndjson", [patient(f"a-{k}", "王", "伟", f"1101011980010{k:04d}") for k in range(30)]
    )
    write_ndjson(
        data / "b.ndjson",
        [patient(f"b-{k}", "李", "娜", f"1101011990010{k:04d}") for k in range(20)]
        + [patient("b-0", "李", "娜", "110101199001000000", birthDate="1990-01-01")]  # a second version
        + [patient("bad", "钱", "多", "110101198001010033", nickname="x")],
    )
    write_ndjson(data / "c.ndjson", [patient("a-0", "王", "伟", "110101198001000000")])  # exists in a
    result = migrated("import", str(data), "--jobs", "2")
    text = output(result)
    assert result.returncode == 1, text
    assert "Imported 52 resources from 3 file(s)" in flat(text)
    assert "1 rejected" in text and "Patient.nickname" in text
    out = tmp_path / "export"
    assert migrated("export", "--type", "Patient", "--out", str(out)).returncode == 0
    patients = {p["id"]: p for p in read_ndjson(out / "Patient.ndjson")}
    assert len(patients) == 50
    assert patients["b-0"]["meta"]["versionId"] == "2" and patients["b-0"]["birthDate"] == "1990-01-01"
    assert patients["a-0"]["meta"]["versionId"] == "2"


def test_import_rejections_never_echo_values(migrated: Cli, tmp_path: Path) -> None:
    # Values in the wrong element are still personal data: an ID number typed into birthDate, a name into
    # gender. The rejection names the element and the rule, not the value.
    data = write_ndjson(
        tmp_path / "misplaced.ndjson",
        [
            patient("p1", "周", "杰", "110101199003070011", birthDate="110101199003076666"),
            patient("p2", "吴", "彦", "110101199003070022", gender="吴彦祖"),
            patient(
                "p3", "郑", "和", "110101199003070033", telecom=[{"system": "13800138000", "value": "x"}]
            ),
        ],
    )
    result = migrated("import", str(data))
    text = output(result)
    assert result.returncode == 1, text
    assert "Patient.birthDate" in text
    assert "Patient.gender" in text
    assert "Patient.telecom[0].system" in text
    for secret in ("110101199003076666", "吴彦祖", "13800138000"):
        assert secret not in text, f"{secret!r} printed:\n{text}"


def test_import_transaction_bundle(migrated: Cli, tmp_path: Path) -> None:
    p_url = f"urn:uuid:{uuid.uuid4()}"
    new_patient = patient("unused", "王", "伟", "110101199001010011")
    del new_patient["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": p_url,
                "resource": new_patient,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "subject": {"reference": p_url},
                    "valueQuantity": {"value": 135, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    path = tmp_path / "transaction.json"
    path.write_bytes(orjson.dumps(bundle))
    result = migrated("import", str(path))
    text = output(result)
    assert result.returncode == 0, text
    assert "Imported 2 resources from 1 file(s)" in flat(text)
    assert sorted(table_rows(text)) == [["Observation", "1"], ["Patient", "1"]]
    out = tmp_path / "export"
    assert migrated("export", "--type", "Patient,Observation", "--out", str(out)).returncode == 0
    [pat] = read_ndjson(out / "Patient.ndjson")
    [obs] = read_ndjson(out / "Observation.ndjson")
    assert obs["subject"]["reference"] == f"Patient/{pat['id']}"


def test_import_failing_transaction_bundle(migrated: Cli, tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": patient("x", "王", "伟", "110101199001010011"),
                "request": {"method": "PUT", "url": "Patient/x"},
            },
            {
                "resource": {"resourceType": "Observation", "status": "final", "colour": "红"},
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    path = tmp_path / "transaction.json"
    path.write_bytes(orjson.dumps(bundle))
    result = migrated("import", str(path))
    text = output(result)
    assert result.returncode == 1, text
    assert "Bundle.entry[1]" in text
    assert "110101199001010011" not in text
    out = tmp_path / "export"
    assert migrated("export", "--type", "Patient", "--out", str(out)).returncode == 0
    assert not (out / "Patient.ndjson").exists()  # all or nothing


def test_import_of_a_missing_path(migrated: Cli, tmp_path: Path) -> None:
    result = migrated("import", str(tmp_path / "nothing-here"))
    assert result.returncode == 2
    assert "does not exist" in output(result)


# -- refusing an un-migrated database -------------------------------------------------------------------
def test_serve_refuses_an_unmigrated_database(cli: Cli) -> None:
    result = cli("serve", "--port", "1", timeout=60)
    assert result.returncode == 2, output(result)
    assert "rhip db upgrade" in output(result)
    assert "serving on" not in output(result)


def test_import_refuses_an_unmigrated_database(cli: Cli, tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "one.ndjson", [patient("p1", "王", "伟", "110101199001010011")])
    result = cli("import", str(data))
    assert result.returncode == 2, output(result)
    assert "rhip db upgrade" in output(result)


def test_import_may_allow_refusals(migrated: Cli, tmp_path: Path) -> None:
    data = write_ndjson(
        tmp_path / "mixed.ndjson",
        [patient("ok-1", "王", "秀英", "110101198001010011"), {"id": "no-type"}],
    )
    result = migrated("import", str(data), "--allow-refused")
    text = output(result)
    assert result.returncode == 0, text  # (make demo loads a region with a few refusals on purpose)
    assert "1 rejected" in text


def test_terminology_list_and_load(migrated: Cli) -> None:
    listed = migrated("terminology", "list")
    assert listed.returncode == 0, output(listed)
    assert "urn:oid:2.16.156.10011.2.3.3.4" in listed.stdout and "GB/T 2261.1" in listed.stdout
    loaded = migrated("terminology", "load")
    assert loaded.returncode == 0, output(loaded)
    resources = 2 * len(builtin_code_systems())  # a CodeSystem and a ValueSet each
    assert flat(loaded.stdout).count("created") == resources
    again = migrated("terminology", "load")
    assert flat(again.stdout).count("unchanged") == resources and "created" not in again.stdout


def test_terminology_map_registers_a_local_dictionary(migrated: Cli, tmp_path: Path) -> None:
    from terminology.test_conceptmaps import CSV  # the terminology tests' dictionary (tests/ is on sys.path)

    dictionary = tmp_path / "4501-sex.csv"
    dictionary.write_text(CSV, encoding="utf-8")
    loaded = migrated("terminology", "map", str(dictionary))
    assert loaded.returncode == 0, output(loaded)
    assert "urn:rhip:cm:4501:sex|2026-10: created (3 mappings)" in flat(loaded.stdout)
    again = migrated("terminology", "map", str(dictionary))
    assert "unchanged" in again.stdout
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(CSV.replace("M,男,1,", "M,男,7,"), encoding="utf-8")
    refused = migrated("terminology", "map", str(wrong))
    assert refused.returncode == 1 and "'M' → '7'" in output(refused)
    broken = tmp_path / "broken.csv"
    broken.write_text("local_code\nM\n", encoding="utf-8")
    unreadable = migrated("terminology", "map", str(broken))
    assert unreadable.returncode == 2 and "url" in output(unreadable)


def test_db_reindex_names_its_types(migrated: Cli) -> None:
    neither = migrated("db", "reindex")
    assert neither.returncode == 2 and "--type" in output(neither)
    unknown = migrated("db", "reindex", "--type", "Organisation")
    assert unknown.returncode == 2 and "Organisation" in output(unknown)
    done = migrated("db", "reindex", "--type", "Organization", "--type", "Location")
    assert done.returncode == 0, output(done)
    assert "Organization: 0 reindexed" in done.stdout and "Location: 0 reindexed" in done.stdout
