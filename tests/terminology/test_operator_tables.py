"""An operator's code tables (RHIP_TERMINOLOGY__TABLES_DIR) are read at start beside the shipped ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhip.bootstrap.container import code_tables
from rhip.bootstrap.settings import Settings
from rhip.terminology.codesystems import CodeTableError
from rhip.terminology.service import TerminologyService

HEADER = "code,display,display_en,parent,verified,valid_from,valid_to\n"
DEPARTMENTS = (
    "# name: 510722H01 科室字典\n# url: urn:rhip:cs:local:510722H01:department\n# version: 2026-11\n"
    "# source: the hospital's HIS, exported 2026-11-20\n# valueset: urn:rhip:vs:local:510722H01:department\n"
    + HEADER
    + "0301,心血管内科,Cardiology,,yes,,\n0302,呼吸内科,Respiratory medicine,,yes,,\n"
)


def settings(folder: Path | None) -> Settings:
    return Settings(terminology={"tables_dir": str(folder) if folder else None})  # type: ignore[arg-type]


def test_an_operator_table_is_held_and_may_replace_a_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "departments.csv").write_text(DEPARTMENTS, encoding="utf-8")
    sex = (
        "# name: GB/T 2261.1 人的性别代码\n# url: urn:oid:2.16.156.10011.2.3.3.4\n# version: 2003-checked\n"
        "# source: the standard's text, checked by the commission\n# valueset: urn:rhip:vs:gb-t-2261-1\n"
        + HEADER
        + "0,未知的性别,Not known,,yes,,\n1,男性,Male,,yes,,\n2,女性,Female,,yes,,\n9,未说明的性别,Not stated,,yes,,\n"
    )
    (tmp_path / "sex.csv").write_text(sex, encoding="utf-8")
    service = TerminologyService(code_tables(settings(tmp_path)))
    assert (
        service.validate_code("0301", valueset="urn:rhip:vs:local:510722H01:department").display
        == "心血管内科"
    )
    replaced = service.code_system("urn:oid:2.16.156.10011.2.3.3.4")
    assert replaced.version == "2003-checked" and replaced.by_code["9"].verified
    assert "urn:oid:2.16.156.10011.2.3.3.3" in service.systems  # the shipped tables stay


def test_without_a_folder_the_shipped_tables_only() -> None:
    assert {cs.url for cs in code_tables(settings(None))} >= {"urn:oid:2.16.156.10011.2.3.3.5"}


def test_a_broken_table_or_a_missing_folder_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "broken.csv").write_text(DEPARTMENTS.replace("0302,", "0301,"), encoding="utf-8")
    with pytest.raises(CodeTableError, match=r"broken\.csv.*listed twice"):
        code_tables(settings(tmp_path))
    with pytest.raises(CodeTableError, match="no such folder"):
        code_tables(settings(tmp_path / "missing"))
