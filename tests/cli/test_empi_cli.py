"""``rhip empi``: import links in batch, train, relink, review and export, as an operator runs them."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import orjson

from .test_cli import Cli, output, write_ndjson

ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
NUMBER = "11010519491231002X"  # a valid number of a woman born 1949-12-31


def registration(rid: str, mrn_system: str, *, with_id: bool = True, phone: str = "13911112222") -> dict:
    """One woman as two institutions register her."""
    identifiers = [{"system": mrn_system, "value": rid.upper()}]
    if with_id:
        identifiers.append({"system": ID_SYSTEM, "value": NUMBER})
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": identifiers,
        "name": [{"family": "王", "given": ["秀兰"]}],
        "gender": "female",
        "birthDate": "1949-12-31",
        "telecom": [{"system": "phone", "value": phone}],
    }


def other(rid: str, n: int) -> dict:
    """Somebody else."""
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": [{"system": "urn:rhip:mrn:C", "value": f"C{n}"}],
        "name": [{"family": "李", "given": [f"{'明华强军刚'[n % 5]}{'一二三四五六七八九十'[n % 10]}"]}],
        "gender": "male",
        "birthDate": f"19{50 + n % 40}-0{1 + n % 9}-1{n % 10}",
    }


def test_import_links_then_export_lists_every_identifier(migrated: Cli, tmp_path: Path) -> None:
    source = write_ndjson(
        tmp_path / "patients.ndjson",
        [registration("a1", "urn:rhip:mrn:A"), registration("b1", "urn:rhip:mrn:B"), other("c1", 1)],
    )
    result = migrated("import", str(source))
    assert result.returncode == 0, output(result)
    assert "linked 3 Patients" in output(result)
    out = tmp_path / "links.csv"
    result = migrated("empi", "export", "--out", str(out))
    assert result.returncode == 0, output(result)
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["patient_id", "source_system", "source_value", "master_id"]
    masters = {r["patient_id"]: r["master_id"] for r in rows}
    assert masters["a1"] == masters["b1"] != masters["c1"]
    assert {(r["patient_id"], r["source_system"], r["source_value"]) for r in rows} == {
        ("a1", "urn:rhip:mrn:A", "A1"),
        ("a1", ID_SYSTEM, NUMBER),
        ("b1", "urn:rhip:mrn:B", "B1"),
        ("b1", ID_SYSTEM, NUMBER),
        ("c1", "urn:rhip:mrn:C", "C1"),
    }
    # The export never goes to the log or the terminal: only the count is printed.
    assert NUMBER not in output(result)


def test_train_refuses_too_little_data(migrated: Cli, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "few.ndjson", [other(f"p{n}", n) for n in range(20)])
    assert migrated("import", str(source), "--no-link").returncode == 0
    result = migrated("empi", "train")
    assert result.returncode == 1
    assert "at least 500 records" in " ".join(output(result).split())


def test_train_then_relink_on_a_synthetic_region(migrated: Cli, tmp_path: Path) -> None:
    region = tmp_path / "region"
    result = migrated("synth", "--out", str(region), "--people", "600", "--years", "2", "--formats", "fhir")
    assert result.returncode == 0, output(result)
    latest: dict[str, bytes] = {}
    for file in sorted((region / "fhir").glob("*.ndjson")):
        for line in file.read_bytes().splitlines():
            if b'"resourceType":"Patient"' in line:
                latest[orjson.loads(line)["id"]] = line
    patients = write_ndjson(tmp_path / "patients.ndjson", list(latest.values()))
    assert migrated("import", str(patients), "--no-link").returncode == 0
    model_file = tmp_path / "model.json"
    result = migrated("empi", "train", "--out", str(model_file), "--version", "test-1")
    assert result.returncode == 0, output(result)
    assert model_file.exists() and b'"version": "test-1"' in model_file.read_bytes()
    result = migrated("empi", "relink", "--workers", "1")
    assert result.returncode == 0, output(result)
    assert f"{len(latest):,} records" in " ".join(output(result).split())
    out = tmp_path / "links.csv"
    assert migrated("empi", "export", "--out", str(out)).returncode == 0
    with out.open(encoding="utf-8") as fh:
        masters = {r["patient_id"]: r["master_id"] for r in csv.DictReader(fh)}
    with (region / "truth" / "registrations.csv").open(encoding="utf-8") as fh:
        person = {r["patient"]: r["person"] for r in csv.DictReader(fh)}
    # Pairwise precision and recall of the region's own model on its own records.
    same_master = Counter(masters.values())
    same_person = Counter(person[p] for p in masters)
    both = Counter((masters[p], person[p]) for p in masters)
    pairs = lambda counts: sum(n * (n - 1) // 2 for n in counts.values())  # noqa: E731
    tp = pairs(both)
    assert tp / pairs(same_master) >= 0.99
    assert tp / pairs(same_person) >= 0.97


def test_review_lists_and_refuses_a_decision_without_an_actor(migrated: Cli) -> None:
    result = migrated("empi", "review")
    assert result.returncode == 0, output(result)
    assert "0 open item(s)" in " ".join(output(result).split())
    result = migrated("empi", "review", "--show", "1", "--decide", "link")
    assert result.returncode == 1
    assert "RHIP-EMPI-0004" in output(result)
