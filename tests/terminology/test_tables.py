"""The code tables of issue #8's second part: each is consistent in itself, agrees with what the platform writes
(the synthetic region, the HL7 v2 mapping, the CDA writer and reader) and answers $lookup, $validate-code,
$expand and $subsumes through the TerminologyService."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import re
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from lxml import etree

from rhip.cda.write import DOCUMENT_TYPES, RENDERERS, markup, render
from rhip.cda.write import clinical as cda_clinical
from rhip.cda.write import ehr as cda_ehr
from rhip.cda.write import emr as cda_emr
from rhip.cda.write import summary as cda_summary
from rhip.documents.cda import codes as document_codes
from rhip.documents.cda import encounter as cda_reader
from rhip.documents.cda.doctypes import DOCUMENT_TYPES as REGISTRY_TYPES
from rhip.exchange.hl7v2.mapping import encounter as v2_encounter
from rhip.synth import catalog
from rhip.synth import systems as synth
from rhip.terminology.codesystems import CodeSystem, builtin_code_systems
from rhip.terminology.service import TerminologyService
from rhip.xmlsafe import parse_xml

DOCUMENTS = "urn:oid:2.16.156.10011.2.4"
VACCINES = "urn:rhip:cs:nip-vaccine"
ELEMENTS = "urn:oid:2.16.156.10011.2.2.1"
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"
DISCHARGE = "urn:oid:2.16.156.10011.2.3.1.265"
ADMISSION = "urn:oid:2.16.156.10011.2.3.1.270"
DRUG_ROUTE = "urn:oid:2.16.156.10011.2.3.1.158"
FOLLOWUP = "urn:oid:2.16.156.10011.2.3.1.183"
PATIENT_TYPE = "urn:oid:2.16.156.10011.2.3.1.271"
NEW_TABLES = (DOCUMENTS, VACCINES, ELEMENTS, ICD10, DISCHARGE, ADMISSION, DRUG_ROUTE, FOLLOWUP, PATIENT_TYPE)
CJK = re.compile(r"[\u4e00-\u9fff]")


def _examples() -> ModuleType:
    # The CDA writer's example contexts (tests/cda/examples.py), one per document type it writes.
    path = Path(__file__).resolve().parents[1] / "cda" / "examples.py"
    spec = importlib.util.spec_from_file_location("cda_examples_for_terminology", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def service() -> TerminologyService:
    return TerminologyService(builtin_code_systems())


@pytest.fixture(scope="module")
def written() -> dict[str, set[str]]:
    """The codes every document type the CDA writer knows writes, by codeSystem (or codeSystemName)."""
    examples = _examples()
    found: dict[str, set[str]] = {}
    for code in RENDERERS:
        root = parse_xml(render(code, examples.CONTEXTS[code]))
        for node in root.iter(etree.Element):
            if node.get("code") and (node.get("codeSystem") or node.get("codeSystemName")):
                key = node.get("codeSystem") or node.get("codeSystemName") or ""
                found.setdefault(key, set()).add(node.get("code") or "")
    return found


def table(service: TerminologyService, url: str) -> CodeSystem:
    return service.code_system(url)


@pytest.mark.parametrize("url", NEW_TABLES)
def test_each_table_names_its_source_and_marks_what_is_unverified(
    service: TerminologyService, url: str
) -> None:
    cs = table(service, url)
    assert cs.source and cs.version and cs.valueset and cs.verified_note
    assert all(CJK.search(c.display) for c in cs.concepts)  # a Chinese display on every row
    assert service.value_set(cs.valueset).pairs() == {(url, c.code) for c in cs.concepts}
    unverified = [c for c in cs.concepts if not c.verified]
    assert unverified, "every new table has rows no public source confirms"
    found = service.lookup(url, unverified[0].code)
    assert found is not None and not found.concept.verified


def test_document_codes_are_the_registrys_and_the_writers(
    service: TerminologyService, written: dict[str, set[str]]
) -> None:
    cs = table(service, DOCUMENTS)
    assert cs.content == "complete"
    assert len([c for c in cs.by_code if c.startswith("C")]) == 53
    assert len([c for c in cs.by_code if c.startswith("HSD")]) == 20
    assert {code: c.display for code, c in cs.by_code.items()} == {
        code: t.display for code, t in REGISTRY_TYPES.items()
    }
    for code, doc_type in DOCUMENT_TYPES.items():  # what the CDA writer calls its documents
        assert service.validate_code(code, system=DOCUMENTS, display=doc_type.title).result, code
    assert written[document_codes.DOCUMENT_CODES] <= set(cs.by_code)
    assert synth.DOCUMENT_TYPE == DOCUMENTS
    assert not cs.by_code["HSDC00.02"].verified and cs.by_code["C0032"].verified  # by order only / a sample
    assert service.lookup(DOCUMENTS, "C0032").concept.display == "住院病案首页"  # type: ignore[union-attr]
    assert not service.validate_code("C0054", valueset=cs.valueset).result
    assert [m.code for m in service.expand(cs.valueset or "", text="病案首页").members] == ["C0032", "C0033"]


def test_vaccine_codes_are_those_the_region_vaccinates_with(
    service: TerminologyService, written: dict[str, set[str]]
) -> None:
    cs = table(service, VACCINES)
    schedules = catalog.immunization()
    for code, vaccine in schedules["vaccines"].items():
        assert cs.by_code[code].display == vaccine["name"] and cs.by_code[code].display_en == vaccine["en"]
    for edition in schedules["editions"].values():
        assert {dose[0] for dose in edition["doses"]} <= set(cs.by_code)
    assert synth.NIP_VACCINE == VACCINES
    assert document_codes.fhir_system("", "国家免疫规划疫苗代码") == VACCINES  # the CDA reader's mapping
    assert written["国家免疫规划疫苗代码"] <= set(cs.by_code)
    assert "1903" in cs.by_code and "1903" not in schedules["vaccines"]  # from the reference list only
    assert cs.content == "fragment" and not any(c.verified for c in cs.concepts)
    assert service.validate_code("0402", system=VACCINES, display="DTaP").result


def test_data_elements_are_those_the_cda_documents_carry(
    service: TerminologyService, written: dict[str, set[str]]
) -> None:
    cs = table(service, ELEMENTS)
    assert cs.url == f"urn:oid:{markup.DATA_ELEMENTS}" == f"urn:oid:{document_codes.DATA_ELEMENTS}"
    assert cs.url == synth.DATA_ELEMENT
    carried = written[markup.DATA_ELEMENTS]
    assert len(carried) > 30 and carried <= set(cs.by_code)
    assert all(re.fullmatch(r"DE\d\d\.\d\d\.\d\d\d\.\d\d", c) for c in cs.by_code)
    assert cs.by_code["DE04.10.174.00"].display == "收缩压" and cs.by_code["DE04.10.174.00"].verified
    assert cs.by_code["DE06.00.108.00"].display == "随访方式" and not cs.by_code["DE06.00.108.00"].verified
    # an id the code names by context (lab and exam reports) shows both names
    assert service.validate_code("DE04.30.019.00", system=ELEMENTS).display == "检验项目代码 / 检查项目代码"


def _chapter_range(display: str) -> tuple[str, str]:
    found = re.search(r"\(([A-Z]\d\d)-([A-Z]\d\d)\)$", display)
    assert found, display
    return found.group(1), found.group(2)


def test_icd10_chapters_hold_the_codes_under_them(service: TerminologyService) -> None:
    cs = table(service, ICD10)
    chapters = [c for c in cs.concepts if c.parent is None]
    assert len(chapters) == 22 and all(re.fullmatch(r"[IVX]+", c.code) for c in chapters)
    assert cs.content == "fragment"
    for concept in cs.concepts:
        if concept.parent is None:
            continue
        top = cs.ancestors(concept.code)[-1]
        first, last = _chapter_range(cs.by_code[top].display)
        assert first <= concept.code[:3] <= last, concept.code
        if concept.parent not in {c.code for c in chapters}:
            assert concept.code.startswith(concept.parent)  # a subcategory under its category
    ranges = sorted(_chapter_range(c.display) for c in chapters)
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert last < first  # the chapters do not overlap


def test_icd10_holds_the_codes_of_the_disease_rules(service: TerminologyService) -> None:
    cs = table(service, ICD10)
    clinical = catalog.clinical()
    for kind in ("acute", "chronic", "cancer", "death_cause"):
        for entry in clinical[kind]:
            assert entry["code"] in cs.by_code, entry
    for disease in catalog.notifiable()["diseases"].values():
        assert cs.by_code[disease["icd10"]].display == disease["name"]
    assert synth.ICD10 == ICD10 == document_codes.ICD10
    assert service.subsumes(ICD10, "IX", "I63.9") == "subsumes"  # 循环系统疾病 > 脑梗死
    assert service.subsumes(ICD10, "J44.9", "X") == "subsumed-by"
    assert service.subsumes(ICD10, "I", "I10") == "not-subsumed"  # chapter I is A00-B99, not the letter I
    found = service.lookup(ICD10, "A38")
    assert found is not None and found.ancestors == ("I",) and found.concept.display == "猩红热"
    assert not service.validate_code("A38", system=ICD10, on=None, display="麻疹").result


def test_discharge_ways_are_the_hl7v2_mappings(service: TerminologyService) -> None:
    cs = table(service, DISCHARGE)
    assert v2_encounter.DISCHARGE_WAY == DISCHARGE
    assert {c.code: c.display for c in cs.concepts} == v2_encounter._DISCHARGE_WAY
    assert service.validate_code("5", system=DISCHARGE, display="死亡").result  # what the region writes
    assert service.validate_code("1", system=DISCHARGE, display="医嘱离院").result


def test_admission_routes_cover_what_the_front_page_writes(service: TerminologyService) -> None:
    cs = table(service, ADMISSION)
    assert set(cda_emr._ADMISSION_ROUTES.values()) | {"9"} == set(cs.by_code)  # 9: a source it does not know
    front_page = _examples().CONTEXTS["C0032"]
    emitted = set()
    for source in ("门诊", "急诊", "转院", "其他医疗机构转入", "自行来院"):
        stay = copy.deepcopy(front_page.encounter)
        stay["hospitalization"]["admitSource"] = {"text": source}
        root = parse_xml(render("C0032", replace(front_page, encounter=stay)))
        emitted |= {n.get("code") for n in root.iter(etree.Element) if n.get("codeSystem") == ADMISSION[8:]}
    assert emitted == set(cs.by_code)
    assert service.lookup(ADMISSION, "3").concept.display == "其他医疗机构转入"  # type: ignore[union-attr]


def test_drug_routes_follow_ups_and_patient_types_are_what_the_cda_code_writes_and_reads(
    service: TerminologyService, written: dict[str, set[str]]
) -> None:
    routes = table(service, DRUG_ROUTE)
    assert {c.display: c.code for c in routes.concepts} == cda_clinical.ROUTES
    assert f"urn:oid:{cda_clinical.ROUTE_SYSTEM}" == DRUG_ROUTE
    followup = table(service, FOLLOWUP)
    assert {c.code: c.display for c in followup.concepts} == dict(cda_ehr._FOLLOWUP_MODES.values())
    assert set(cda_reader._FOLLOWUP_CLASSES) == set(followup.by_code)
    types = table(service, PATIENT_TYPE)
    assert {c.code: c.display for c in types.concepts} == dict(cda_summary._PATIENT_TYPES.values())
    assert set(cda_reader._PATIENT_TYPE_CLASSES) == set(types.by_code)
    assert f"urn:oid:{cda_summary.PATIENT_TYPE_SYSTEM}" == PATIENT_TYPE
    for url in (DRUG_ROUTE, FOLLOWUP, PATIENT_TYPE):
        assert written[url.removeprefix("urn:oid:")] <= set(table(service, url).by_code)
        assert table(service, url).content == "fragment"
    assert types.by_code["3"].verified and not types.by_code["1"].verified  # 住院 is in the C0001 sample
    assert service.validate_code("403", system=DRUG_ROUTE, display="Intramuscular injection").result
