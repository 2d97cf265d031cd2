"""`rhip import` registers CDA documents (files, folders, zips) and keeps the refused ones."""

from __future__ import annotations

import base64
import shutil
import zipfile
from pathlib import Path

import orjson

from .test_cli import Cli, output

GOLDEN = Path(__file__).resolve().parents[1] / "documents" / "golden"


def test_import_a_zip_and_a_folder_of_documents(migrated: Cli, tmp_path: Path) -> None:
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("C0002.xml", "C0007.xml", "HSDB04.01.xml"):
            zf.write(GOLDEN / name, name)
    result = migrated("import", str(archive), "--no-link")
    assert result.returncode == 0, output(result)
    assert "3 of 3 documents registered from 1 file(s)" in output(result)
    again = migrated("import", str(archive), "--no-link")  # a repeated import registers nothing twice
    assert again.returncode == 0, output(again)
    folder = tmp_path / "more"
    folder.mkdir()
    shutil.copy(GOLDEN / "C0053.xml", folder / "discharge.xml")
    (folder / "broken.xml").write_bytes(b"<ClinicalDocument xmlns='urn:hl7-org:v3'><id/></ClinicalDocument>")
    refused = migrated("import", str(folder), "--no-link")
    assert refused.returncode == 1, output(refused)
    assert "1 of 2 documents registered" in output(refused)
    assert "rhip exchange errors --channel cda" in output(refused)


def test_imported_documents_are_registered_with_their_bytes(migrated: Cli, tmp_path: Path) -> None:
    shutil.copy(GOLDEN / "C0002.xml", tmp_path / "one.xml")
    assert migrated("import", str(tmp_path / "one.xml"), "--no-link").returncode == 0
    out = tmp_path / "out"
    result = migrated("export", "--out", str(out), "--type", "DocumentReference,Binary")
    assert result.returncode == 0, output(result)
    [reference] = [
        orjson.loads(line) for line in (out / "DocumentReference.ndjson").read_bytes().splitlines()
    ]
    [binary] = [orjson.loads(line) for line in (out / "Binary.ndjson").read_bytes().splitlines()]
    assert reference["type"]["coding"][0]["code"] == "C0002"
    assert reference["content"][0]["attachment"]["url"] == f"Binary/{binary['id']}"
    assert base64.b64decode(binary["data"]) == (GOLDEN / "C0002.xml").read_bytes()


def test_two_jobs_register_what_one_process_registers(migrated: Cli, tmp_path: Path) -> None:
    # One zip per institution, as hospitals export them: each job takes whole zips.
    for name, members in (
        ("a.zip", ("C0002.xml", "C0007.xml")),
        ("b.zip", ("HSDB04.01.xml", "HSDB04.02.xml")),
    ):
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            for member in members:
                zf.write(GOLDEN / member, member)
    result = migrated("import", str(tmp_path), "--jobs", "2", "--no-link")
    assert result.returncode == 0, output(result)
    assert "4 of 4 documents registered from 2 file(s)" in output(result)
    out = tmp_path / "out"
    assert migrated("export", "--out", str(out), "--type", "DocumentReference").returncode == 0
    assert len((out / "DocumentReference.ndjson").read_bytes().splitlines()) == 4


def test_exclusive_is_opt_in() -> None:
    """Plain creates would duplicate records while a server registers the same institutions' documents."""
    import inspect

    from rhip.cli.main import import_

    option = inspect.signature(import_).parameters["exclusive"].default
    assert option is False
