"""The shipped code tables that scripts/derive_terminology_tables.py derives are what it derives today.

The division, document-code, vaccine, data-element and ICD-10 tables copy what other parts of the repository
hold (the resident index's divisions, the document registry's types, the synthetic region's schedules and
disease lists, the ids the CDA code uses); deriving them again here means a change on either side that is not
carried over fails the tests instead of drifting.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from rhip.terminology.codesystems import builtin_code_systems, parse_code_table

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "src" / "rhip" / "terminology" / "data"


def _script() -> ModuleType:
    path = ROOT / "scripts" / "derive_terminology_tables.py"
    spec = importlib.util.spec_from_file_location("derive_terminology_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DERIVE = _script()


@pytest.mark.parametrize("name", sorted(DERIVE.TABLES))
def test_the_shipped_table_is_what_the_script_derives(name: str) -> None:
    shipped = (DATA / name).read_text(encoding="utf-8")
    assert DERIVE.TABLES[name]() == shipped, f"run python scripts/derive_terminology_tables.py ({name})"
    parse_code_table(shipped, name)  # and the service can read it


def test_every_derived_table_is_served() -> None:
    served = {cs.url for cs in builtin_code_systems()}
    for name in DERIVE.TABLES:
        assert parse_code_table((DATA / name).read_text(encoding="utf-8"), name).url in served


def test_every_data_element_id_in_the_cda_code_is_in_the_table() -> None:
    # Counted here with a plainer pattern than the script's, over the same files.
    pattern = re.compile(r"DE\d\d\.\d\d\.\d\d\d\.\d\d")
    files = [p for folder in DERIVE.CDA_SOURCES for p in folder.rglob("*.py")] + [DERIVE.VITAL_SIGNS]
    found = {m for p in files for m in pattern.findall(p.read_text(encoding="utf-8"))}
    table = parse_code_table((DATA / "ws-363-data-elements.csv").read_text(encoding="utf-8"))
    assert found and found <= set(table.by_code)
    # the header's address range (DE02.01.009.01–.06) names six elements
    assert {f"DE02.01.009.0{n}" for n in range(1, 7)} <= set(table.by_code)


def test_a_range_of_data_elements_and_the_names_the_code_gives() -> None:
    assert DERIVE._expand("DE02.01.009.01–.03") == ["DE02.01.009.01", "DE02.01.009.02", "DE02.01.009.03"]
    assert DERIVE._expand("DE04.10.174.00") == ["DE04.10.174.00"]
    names = DERIVE.used_data_elements()
    assert names["DE04.30.019.00"] == ["检验项目代码", "检查项目代码"]  # lab and exam reports name it apart
    assert names["DE05.01.025.00"] == ["诊断名称"]  # from prose: "(… DE05.01.025.00 诊断名称)"
    assert all(re.search(r"[\u4e00-\u9fff]", n) for ns in names.values() for n in ns)


def test_an_icd10_code_goes_to_the_chapter_whose_range_holds_it() -> None:
    assert DERIVE.chapter_of("A38") == "I" and DERIVE.chapter_of("D48.9") == "II"
    assert DERIVE.chapter_of("D50.0") == "III" and DERIVE.chapter_of("H60") == "VIII"
    assert DERIVE.chapter_of("T98.3") == "XIX" and DERIVE.chapter_of("V01") == "XX"
    with pytest.raises(SystemExit, match="no chapter"):
        DERIVE.chapter_of("U99")  # beyond U85


def test_the_document_codes_agree_with_the_shared_reference_list_when_it_is_there() -> None:
    reference = DERIVE._psv_codes()
    if reference is None:
        pytest.skip(f"{DERIVE.WST500_PSV} is not beside this checkout")
    table = parse_code_table((DATA / "ws-t-483-500-document-types.csv").read_text(encoding="utf-8"))
    assert sorted(reference) == sorted(c for c in table.by_code if c.startswith("C"))
