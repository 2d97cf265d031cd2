"""Every output file is valid for its format, and a seed always gives the same bytes."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import hl7
import orjson
import pytest
from lxml import etree

from rhip.bootstrap.container import Platform
from rhip.fhir.bulk import BulkImporter
from rhip.synth.run import Options, Summary, synthesize

from .test_cda import check_structure
from .xmlparse import parse


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small") / "region"
    synthesize(Options(out=out, people=120, seed=5, years=2, workers=1))
    return out


def test_fhir_output_is_accepted_by_the_repository(small: Path, platform: Platform) -> None:
    importer = BulkImporter(platform.fhir, platform.repository, batch_size=500)
    summary = importer.import_path(small / "fhir")
    assert summary.rejected == []
    manifest = orjson.loads((small / "manifest.json").read_bytes())
    assert summary.total_imported == sum(manifest["resources"].values())
    # The transaction Bundles carry the same resources: loading them over the NDJSON rejects nothing.
    bundles = sorted((small / "bundles").glob("*.ndjson"), key=lambda p: p.stat().st_size)[-3:]
    for path in bundles:
        again = importer.import_path(path)
        assert again.rejected == [] and again.files == 1


def test_hl7v2_streams_parse(region_dir: tuple[Path, Summary]) -> None:
    out = region_dir[0]
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    charsets = {i["code"]: i["charset"] for i in manifest["institutions"] if i["door"] == "hl7v2"}
    files = sorted((out / "hl7v2").glob("*.mllp"))
    assert files and {f.stem for f in files} <= set(charsets)
    kinds: set[str] = set()
    for path in files:
        codec = "gb18030" if charsets[path.stem] == "GBK" else "utf-8"
        frames = path.read_bytes().split(b"\x1c\r")
        assert frames[-1] == b""
        for frame in frames[:-1]:
            assert frame.startswith(b"\x0bMSH|^~\\&|")
            message = hl7.parse(frame[1:].decode(codec))
            msh = message.segment("MSH")
            kinds.add("^".join(str(msh[9]).split("^")[:2]))
            assert str(msh[4]).split("^")[0] == path.stem
            assert message.segment("PID")
    assert {"ADT^A04", "ADT^A01", "ADT^A03", "ORU^R01", "VXU^V04"} <= kinds


def _archives(out: Path, kind: str) -> list[tuple[str, bytes]]:
    docs = []
    for path in sorted((out / kind).glob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            docs.extend((f"{path.stem}/{name}", zf.read(name)) for name in zf.namelist())
    return docs


def test_cda_documents_follow_the_cda_content_model(region_dir: tuple[Path, Summary]) -> None:
    docs = _archives(region_dir[0], "cda")
    codes: set[str] = set()
    for name, xml in docs:
        root = parse(xml)
        check_structure(root, where=name)
        codes.add(root.find("{urn:hl7-org:v3}code").get("code"))
    assert {"C0002", "C0032", "C0053", "HSDB04.01", "HSDB04.02", "HSDB03.01", "HSDB03.02"} <= codes


def test_hl7v3_messages_parse(region_dir: tuple[Path, Summary]) -> None:
    docs = _archives(region_dir[0], "hl7v3")
    interactions = set()
    for _name, xml in docs:
        root = parse(xml)
        assert root.tag.startswith("{urn:hl7-org:v3}")
        interactions.add(etree.QName(root).localname)
    assert {"PRPA_IN201311UV02", "PRPM_IN401030UV01", "PRPM_IN301010UV01"} <= interactions


def _digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_the_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    a = synthesize(Options(out=tmp_path / "a", people=80, seed=9, years=1, workers=1))
    synthesize(Options(out=tmp_path / "b", people=80, seed=9, years=1, workers=2))
    synthesize(Options(out=tmp_path / "c", people=80, seed=10, years=1, workers=1))
    da, db, dc = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    da.pop("manifest.json"), db.pop("manifest.json"), dc.pop("manifest.json")  # holds the run's duration
    assert a.total > 1000
    assert da == db
    assert da != dc
