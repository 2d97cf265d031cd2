"""The WS/T 500 / WS/T 483 CDA writers (rhip.cda.write): structure, header codes, the values of the FHIR input,
escaping.

No copy of the HL7 CDA R2 XML schema could be obtained from a package registry (rhip/cda/data/README.md),
so every document is checked with the product's structural validator, rhip.cda.schema, against the
hand-written CDA R2 content model in rhip/cda/data/POCD_MT000040-subset.txt (element order and
cardinality, attributes and their vocabularies, data types, narrative). When the HL7 schema files are put
in tests/data/cda-schema/, the documents are validated against them as well.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from rhip.cda.errors import DocumentContentMissing, UnknownDocumentType
from rhip.cda.fhirread import ts
from rhip.cda.schema import validate
from rhip.cda.write import DOCUMENT_TYPES, RENDERERS, DocumentContext, render
from rhip.synth import systems as s

from . import examples as ex
from .xmlparse import HARDENED, parse

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"v3": V3}
PSV = Path(__file__).resolve().parents[3] / "shared" / "reference" / "wst500-documents.psv"
# WS/T 483 codes and templateIds (cn-standards.md §3.1; the templateIds are inferred there).
WST483 = {
    "HSDC00.05": ("2.16.156.10011.2.1.1.20", "转诊（院）记录"),
    "HSDB04.01": ("2.16.156.10011.2.1.1.12", "高血压患者随访服务"),
    "HSDB04.02": ("2.16.156.10011.2.1.1.13", "2型糖尿病患者随访服务"),
    "HSDB03.01": ("2.16.156.10011.2.1.1.9", "预防接种报告"),
    "HSDB03.02": ("2.16.156.10011.2.1.1.10", "传染病报告"),
}

# -- the structural check: the product's CDA R2 validator (rhip.cda.schema) --------------------------------
XSD = Path(__file__).resolve().parents[1] / "data" / "cda-schema" / "CDA.xsd"


def local(el: etree._Element) -> str:
    """The element's local name (after checking it is in the v3 namespace)."""
    qname = etree.QName(el)
    assert qname.namespace == V3, f"{el.tag} is not in the HL7 v3 namespace"
    return str(qname.localname)


def check_structure(root: etree._Element, where: str = "") -> None:
    """Fail with the validator's problems when the document (named ``where``) breaks the CDA R2 model."""
    problems = validate(root)
    assert not problems, "\n".join(f"{where}{p}" for p in problems)


# -- inputs ---------------------------------------------------------------------------------------------
def patient() -> dict[str, Any]:
    """The example patient with a health-record number as well."""
    p = copy.deepcopy(ex.PATIENT)
    p["identifier"].append({"system": s.HEALTH_RECORD, "value": "51070300100100012"})
    return p


def outpatient_visit() -> dict[str, Any]:
    """An outpatient visit with a free-text chief complaint."""
    enc = copy.deepcopy(ex.ENCOUNTER)
    enc["class"] = {"system": s.V3_ACT_CODE, "code": "AMB", "display": "ambulatory"}
    enc["period"] = {"start": "2023-03-04T09:12:00+08:00", "end": "2023-03-04T09:50:00+08:00"}
    enc["reasonCode"] = [{"text": "咳嗽、发热3天"}]
    del enc["hospitalization"]
    return enc


def inpatient_stay() -> dict[str, Any]:
    """The example stay with its 住院号."""
    enc = copy.deepcopy(ex.ENCOUNTER)
    enc["identifier"] = [{"system": s.INPATIENT_NO, "value": "ZY2023000456"}]
    return enc


def followup_visit(service: str) -> dict[str, Any]:
    """A chronic-disease follow-up at the clinic."""
    enc = copy.deepcopy(outpatient_visit())
    enc["type"] = [{"coding": [{"system": s.SERVICE_TYPE, "code": service}]}]
    enc["reasonCode"] = []
    return enc


def condition(code: str, name: str) -> dict[str, Any]:
    """An active chronic-disease Condition."""
    c = copy.deepcopy(ex.CONDITION)
    c["id"] = f"cond-{code}"
    c["clinicalStatus"] = {"coding": [{"system": s.CONDITION_CLINICAL, "code": "active"}]}
    c["code"] = {"coding": [{"system": s.ICD10, "code": code, "display": name}], "text": name}
    return c


DESTINATION = {
    "resourceType": "Organization",
    "id": "org-510107-H001",
    "identifier": [{"system": s.ORGANIZATION_OID, "value": "510107-H001"}],
    "name": "四川大学华西医院",
}
BASE = DocumentContext(
    document_id="510703-H001-DOC-000001",
    effective_time="2023-03-11T10:30:00+08:00",
    patient=patient(),
    custodian=ex.ORGANIZATION,
    author=ex.PRACTITIONER,
)
CONTEXTS: dict[str, DocumentContext] = {
    "C0002": replace(
        BASE,
        encounter=outpatient_visit(),
        conditions=[ex.CONDITION],
        observations=[ex.BLOOD_PRESSURE, ex.LAB_RESULT],
        medication_requests=[ex.MEDICATION_REQUEST],
    ),
    "C0007": replace(
        BASE,
        encounter=outpatient_visit(),
        observations=[ex.LAB_RESULT],
        diagnostic_report=ex.DIAGNOSTIC_REPORT,
    ),
    "C0032": replace(
        BASE, encounter=inpatient_stay(), conditions=[ex.CONDITION], observations=[ex.BLOOD_PRESSURE]
    ),
    "C0053": replace(
        BASE,
        encounter=inpatient_stay(),
        conditions=[ex.CONDITION],
        observations=[ex.LAB_RESULT],
        medication_requests=[ex.MEDICATION_REQUEST],
        diagnostic_report=ex.DIAGNOSTIC_REPORT,
    ),
    "HSDC00.05": replace(
        BASE,
        encounter=outpatient_visit(),
        conditions=[ex.CONDITION],
        observations=[ex.BLOOD_PRESSURE],
        destination=DESTINATION,
        referral_reason="重症肺炎，需上级医院进一步诊治",
    ),
    "HSDB04.01": replace(
        BASE,
        encounter=followup_visit("htn-followup"),
        conditions=[condition("I10", "原发性高血压")],
        observations=[ex.BLOOD_PRESSURE],
        medication_requests=[ex.MEDICATION_REQUEST],
    ),
    "HSDB04.02": replace(
        BASE,
        encounter=followup_visit("dm-followup"),
        conditions=[condition("E11.9", "2型糖尿病")],
        observations=[ex.BLOOD_PRESSURE, ex.LAB_RESULT],
    ),
    "HSDB03.01": replace(BASE, immunizations=[ex.IMMUNIZATION]),
    "HSDB03.02": replace(BASE, encounter=outpatient_visit(), conditions=[ex.NOTIFIABLE_CONDITION]),
}


def one(root: etree._Element, path: str) -> str:
    """The single string an XPath selects."""
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    assert len(found) == 1, (path, found)
    return str(found[0])


def values(root: etree._Element, path: str) -> list[str]:
    """All strings an XPath selects."""
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    return [str(x) for x in found]


def de_value(root: etree._Element, element: str, attr: str = "value") -> list[str]:
    """The values of the observations coded with a WS 363 data element."""
    return values(root, f'//v3:observation[v3:code/@code="{element}"]/v3:value/@{attr}')


def rendered(code: str) -> etree._Element:
    """The parsed document of this type made from the example context."""
    return parse(RENDERERS[code](CONTEXTS[code]))


# -- tests ----------------------------------------------------------------------------------------------
def test_registry_covers_the_twelve_document_types() -> None:
    # The nine the generator writes are checked here; C0001, C0006 and HSDA00.01 in tests/cda.
    assert set(RENDERERS) == set(DOCUMENT_TYPES) >= set(CONTEXTS)
    assert len(RENDERERS) == 12


@pytest.mark.parametrize("code", sorted(CONTEXTS))
def test_document_is_well_formed_and_follows_the_cda_content_model(code: str) -> None:
    document = render(code, CONTEXTS[code])
    assert isinstance(document, bytes)
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    document.decode("utf-8")
    root = parse(document)
    assert local(root) == "ClinicalDocument"
    check_structure(root)


@pytest.mark.skipif(
    not XSD.exists(), reason="the HL7 CDA schema is not in tests/data/cda-schema (see its README)"
)
def test_documents_validate_against_the_hl7_cda_schema() -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD), HARDENED))
    for code, ctx in CONTEXTS.items():
        schema.assertValid(parse(render(code, ctx)))


@pytest.mark.parametrize("code", sorted(CONTEXTS))
def test_header_carries_code_template_title_and_record_target(code: str) -> None:
    root = rendered(code)
    doc = DOCUMENT_TYPES[code]
    assert one(root, "/v3:ClinicalDocument/v3:realmCode/@code") == "CN"
    assert one(root, "/v3:ClinicalDocument/v3:typeId/@extension") == "POCD_MT000040"
    assert one(root, "/v3:ClinicalDocument/v3:templateId/@root") == doc.template_id
    assert one(root, "/v3:ClinicalDocument/v3:code/@code") == code
    assert one(root, "/v3:ClinicalDocument/v3:code/@codeSystem") == "2.16.156.10011.2.4"
    assert one(root, "/v3:ClinicalDocument/v3:title/text()") == doc.title
    assert one(root, '/v3:ClinicalDocument/v3:id[@root="2.16.156.10011.1.1"]/@extension') == BASE.document_id
    assert one(root, "/v3:ClinicalDocument/v3:effectiveTime/@value") == "20230311103000"
    assert one(root, "/v3:ClinicalDocument/v3:confidentialityCode/@code") == "N"
    assert one(root, "/v3:ClinicalDocument/v3:languageCode/@code") == "zh-CN"
    assert one(root, "/v3:ClinicalDocument/v3:setId/@extension") == BASE.document_id
    assert one(root, "/v3:ClinicalDocument/v3:versionNumber/@value") == "1"
    role = "/v3:ClinicalDocument/v3:recordTarget/v3:patientRole"
    assert (
        one(root, f'{role}/v3:patient/v3:id[@root="2.16.156.10011.1.3"]/@extension') == "510703198507120027"
    )
    assert one(root, f"{role}/v3:patient/v3:name/text()") == "王丽"
    assert one(root, f"{role}/v3:patient/v3:administrativeGenderCode/@code") == "2"
    assert one(root, f"{role}/v3:patient/v3:administrativeGenderCode/@codeSystem") == "2.16.156.10011.2.3.3.4"
    assert one(root, f"{role}/v3:patient/v3:birthTime/@value") == "19850712"
    assert one(root, f"{role}/v3:patient/v3:maritalStatusCode/@code") == "20"
    assert one(root, f"{role}/v3:patient/v3:ethnicGroupCode/@code") == "01"
    assert [one(root, f"{role}/v3:addr/v3:{part}/text()") for part in ("state", "city", "county")] == [
        "四川省",
        "绵阳市",
        "涪城区",
    ]
    assert one(root, f"{role}/v3:addr/v3:precinct/text()") == "城郊街道"
    assert one(root, f"{role}/v3:addr/v3:streetName/text()") == "和平村"
    assert one(root, f"{role}/v3:addr/v3:houseNumber/text()") == "3组15号"
    assert one(root, f"{role}/v3:telecom/@value") == "tel:13981612345"
    author = "/v3:ClinicalDocument/v3:author/v3:assignedAuthor"
    assert one(root, f"{author}/v3:assignedPerson/v3:name/text()") == "李建国"
    custodian = "/v3:ClinicalDocument/v3:custodian/v3:assignedCustodian/v3:representedCustodianOrganization"
    assert one(root, f'{custodian}/v3:id[@root="2.16.156.10011.1.5"]/@extension') == "510703-H001"
    assert one(root, f"{custodian}/v3:name/text()") == "绵阳市中心医院"


@pytest.mark.parametrize("code", [c for c in sorted(CONTEXTS) if c.startswith("C")])
def test_wst500_codes_and_templates_match_the_reference_list(code: str) -> None:
    if not PSV.exists():
        pytest.skip(f"{PSV} not present")
    rows = {line.split("|")[1]: line.split("|") for line in PSV.read_text("utf-8").splitlines() if line}
    _, _, name, template = rows[code]
    doc = DOCUMENT_TYPES[code]
    assert doc.template_id == template
    # The list writes short names without brackets (门急诊病历 for 门（急）诊病历).
    assert re.sub(r"[（）()]", "", doc.title) == name


@pytest.mark.parametrize("code", sorted(WST483))
def test_wst483_codes_and_templates_match_cn_standards(code: str) -> None:
    assert (DOCUMENT_TYPES[code].template_id, DOCUMENT_TYPES[code].title) == WST483[code]


def test_health_record_and_visit_numbers_go_under_their_oids() -> None:
    followup = rendered("HSDB04.01")
    role = "/v3:ClinicalDocument/v3:recordTarget/v3:patientRole"
    assert one(followup, f'{role}/v3:id[@root="2.16.156.10011.1.2"]/@extension') == "51070300100100012"
    assert one(followup, f'{role}/v3:id[@root="2.16.156.10011.1.19"]/@extension') == "5107000000123456789"
    outpatient = rendered("C0002")
    assert one(outpatient, f'{role}/v3:id[@root="2.16.156.10011.1.11"]/@extension') == "MZ2023000123"
    front = rendered("C0032")
    assert one(front, f'{role}/v3:id[@root="2.16.156.10011.1.12"]/@extension') == "ZY2023000456"
    assert one(front, f'{role}/v3:id[@root="2.16.156.10011.1.13"]/@extension') == "M00012345"


def test_outpatient_record_carries_complaint_vitals_diagnosis_and_prescription() -> None:
    root = rendered("C0002")
    assert values(root, '//v3:observation[v3:code/@code="DE04.01.119.00"]/v3:value/text()') == [
        "咳嗽、发热3天"
    ]
    assert de_value(root, "DE04.10.174.00") == ["146"]
    assert de_value(root, "DE04.10.176.00") == ["92"]
    assert de_value(root, "DE04.10.174.00", "unit") == ["mm[Hg]"]
    assert de_value(root, "DE05.01.024.00", "code") == ["J18.9"]
    assert de_value(root, "DE05.01.024.00", "codeSystem") == ["2.16.156.10011.2.3.3.11"]
    drug = "//v3:substanceAdministration/v3:consumable/v3:manufacturedProduct/v3:manufacturedLabeledDrug"
    assert one(root, f"{drug}/v3:name/text()") == "阿莫西林胶囊 0.25g"
    assert one(root, f"{drug}/v3:code/@code") == "J01CA04"
    assert one(root, "//v3:substanceAdministration/v3:doseQuantity/@value") == "0.5"
    assert one(root, "//v3:substanceAdministration/v3:routeCode/@displayName") == "口服"
    assert (
        one(root, "//v3:componentOf/v3:encompassingEncounter/v3:effectiveTime/v3:low/@value")
        == "20230304091200"
    )
    assert (
        one(root, "//v3:section[v3:code/@code='29548-5']/v3:text/v3:list/v3:item/text()") == "肺炎（J18.9）"
    )


def test_lab_report_carries_results_with_units_flags_and_ranges() -> None:
    root = rendered("C0007")
    role = "/v3:ClinicalDocument/v3:recordTarget/v3:patientRole"
    assert one(root, f'{role}/v3:id[@root="2.16.156.10011.1.33"]/@extension') == "JY2023030400017"
    assert de_value(root, "DE04.30.019.00", "code") == ["1558-6"]
    assert de_value(root, "DE04.30.015.00") == ["7.8"]
    assert de_value(root, "DE04.30.015.00", "unit") == ["mmol/L"]
    result = '//v3:observation[v3:code/@code="DE04.30.015.00"]'
    assert one(root, f"{result}/v3:interpretationCode/@code") == "H"
    assert one(root, f"{result}/v3:referenceRange/v3:observationRange/v3:value/v3:low/@value") == "3.9"
    assert one(root, f"{result}/v3:referenceRange/v3:observationRange/v3:value/v3:high/@value") == "6.1"
    assert values(root, '//v3:observation[v3:code/@code="DE04.30.018.00"]/v3:value/text()') == ["生化全项"]
    assert one(root, "/v3:ClinicalDocument/v3:author/v3:time/@value") == "20230304110200"
    assert (
        one(root, "/v3:ClinicalDocument/v3:legalAuthenticator/v3:assignedEntity/v3:code/@displayName")
        == "审核医师"
    )


def test_front_page_carries_principal_diagnosis_disposition_and_stay() -> None:
    root = rendered("C0032")
    main = '//v3:observation[v3:code/@code="DE05.01.024.00"][v3:code/v3:qualifier/v3:name/@displayName="主要诊断"]'
    assert one(root, f"{main}/v3:value/@code") == "J18.9"
    assert de_value(root, "DE06.00.223.00", "code") == ["1"]
    assert de_value(root, "DE06.00.310.00") == ["7"]
    assert one(root, "//v3:encompassingEncounter/v3:code/@displayName") == "门诊"
    assert one(root, "//v3:encompassingEncounter/v3:effectiveTime/v3:high/@value") == "20230311100000"
    assert (
        one(root, "//v3:encompassingEncounter/v3:location//v3:serviceProviderOrganization/v3:name/text()")
        == "呼吸内科"
    )


def test_discharge_summary_carries_admission_and_discharge_diagnoses_and_orders() -> None:
    root = rendered("C0053")
    admission = '//v3:section[v3:code/@code="46241-6"]//v3:observation[v3:code/@code="DE05.01.024.00"]'
    assert one(root, f"{admission}/v3:value/@code") == "J18.9"
    assert values(root, '//v3:observation[v3:code/@code="DE06.00.193.00"]/v3:value/text()') == ["治愈出院"]
    orders = values(root, '//v3:observation[v3:code/@code="DE06.00.287.00"]/v3:value/text()')
    assert orders == ["阿莫西林胶囊 0.25g：口服，每次0.5g，每日3次"]
    positive = values(root, '//v3:observation[v3:code/@code="DE04.50.128.00"]/v3:value/text()')
    assert positive and "空腹血糖 7.8 mmol/L ↑" in positive[0]


def test_referral_names_the_destination_and_reason() -> None:
    root = rendered("HSDC00.05")
    recipient = "/v3:ClinicalDocument/v3:informationRecipient/v3:intendedRecipient/v3:receivedOrganization"
    assert one(root, f"{recipient}/v3:name/text()") == "四川大学华西医院"
    assert one(root, f'{recipient}/v3:id[@root="2.16.156.10011.1.5"]/@extension') == "510107-H001"
    reason = values(root, '//v3:observation[v3:code/@code="DE06.00.177.00"]/v3:value/text()')
    assert reason == ["重症肺炎，需上级医院进一步诊治"]
    assert one(root, "//v3:section[v3:code/@code='42349-1']/v3:title/text()") == "转诊信息"
    assert de_value(root, "DE05.01.024.00", "code") == ["J18.9"]
    assert root.xpath("/v3:ClinicalDocument/v3:legalAuthenticator", namespaces=NS)


def test_referral_without_destination_is_refused() -> None:
    with pytest.raises(DocumentContentMissing, match="destination"):
        render("HSDC00.05", replace(CONTEXTS["HSDC00.05"], destination=None))


def test_hypertension_followup_carries_blood_pressure_and_control() -> None:
    root = rendered("HSDB04.01")
    assert de_value(root, "DE04.10.174.00") == ["146"]
    assert de_value(root, "DE04.10.176.00") == ["92"]
    assert de_value(root, "DE06.00.108.00", "code") == ["1"]
    assert values(root, '//v3:observation[v3:code/@displayName="此次随访分类"]/v3:value/text()') == [
        "控制不满意"
    ]
    assert de_value(root, "DE05.01.024.00", "code") == ["I10"]
    assert one(root, "//v3:substanceAdministration/@moodCode") == "EVN"
    assert not root.xpath("/v3:ClinicalDocument/v3:legalAuthenticator", namespaces=NS)


def test_hypertension_followup_controlled_when_below_140_90() -> None:
    bp = copy.deepcopy(ex.BLOOD_PRESSURE)
    bp["component"][0]["valueQuantity"]["value"] = 128
    bp["component"][1]["valueQuantity"]["value"] = 82
    root = parse(render("HSDB04.01", replace(CONTEXTS["HSDB04.01"], observations=[bp])))
    assert values(root, '//v3:observation[v3:code/@displayName="此次随访分类"]/v3:value/text()') == [
        "控制满意"
    ]


def test_diabetes_followup_carries_fasting_glucose() -> None:
    root = rendered("HSDB04.02")
    assert de_value(root, "DE04.30.019.00", "code") == ["1558-6"]
    assert de_value(root, "DE04.30.015.00") == ["7.8"]
    assert values(root, '//v3:observation[v3:code/@displayName="此次随访分类"]/v3:value/text()') == [
        "控制不满意"
    ]
    assert de_value(root, "DE05.01.024.00", "code") == ["E11.9"]


def test_immunization_report_carries_vaccine_lot_dose_and_date() -> None:
    root = rendered("HSDB03.01")
    dose = "//v3:section[v3:code/@code='11369-6']/v3:entry/v3:substanceAdministration"
    material = f"{dose}/v3:consumable/v3:manufacturedProduct/v3:manufacturedMaterial"
    assert one(root, f"{material}/v3:code/@code") == "0402"
    assert one(root, f"{material}/v3:name/text()") == "百白破疫苗"
    assert one(root, f"{material}/v3:lotNumberText/text()") == "202301A17"
    assert one(root, f"{dose}/v3:effectiveTime/@value") == "20230605100000"
    assert one(root, f"{dose}/v3:repeatNumber/@value") == "2"
    assert one(root, f"{dose}/v3:doseQuantity/@unit") == "mL"
    assert one(root, f"{dose}/v3:approachSiteCode/@displayName") == "左上臂"
    maker = f"{dose}/v3:consumable/v3:manufacturedProduct/v3:manufacturerOrganization/v3:name/text()"
    assert one(root, maker) == "武汉生物制品研究所有限责任公司"
    assert not root.xpath("//v3:componentOf", namespaces=NS)


def test_immunization_report_needs_an_immunization() -> None:
    with pytest.raises(DocumentContentMissing, match="Immunization"):
        render("HSDB03.01", replace(CONTEXTS["HSDB03.01"], immunizations=()))


def test_infectious_disease_report_carries_icd10_card_code_and_case_class() -> None:
    root = rendered("HSDB03.02")
    assert de_value(root, "DE05.01.024.00", "code") == ["B08.4"]
    diagnosis = '//v3:observation[v3:code/@code="DE05.01.024.00"]'
    assert one(root, f"{diagnosis}/v3:effectiveTime/v3:low/@value") == "20230520"
    card = '//v3:observation[v3:code/@displayName="法定传染病病种"]/v3:value'
    assert one(root, f"{card}/@code") == "4000"
    assert one(root, f"{card}/@displayName") == "手足口病"
    case = '//v3:observation[v3:code/@displayName="病例分类"]/v3:value'
    assert one(root, f"{case}/@code") == "1"
    assert one(root, f"{case}/@displayName") == "临床诊断病例"
    assert one(root, "/v3:ClinicalDocument/v3:author/v3:time/@value") == "20230521103000"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<title>", '<languageCode code="zh-CN"/><title>'),  # header out of order
        ("<precinct>城郊街道</precinct>", "<township>城郊街道</township>"),  # the samples' 乡镇 part
        ('<statusCode code="completed"/>', ""),  # organizer without statusCode
        ('<value xsi:type="ST">', "<value>"),  # ANY without xsi:type
        ('root="2.16.156.10011.1.3"', 'root="ID_CARD"'),  # not an OID
        ('<effectiveTime value="2023', '<effectiveTime value="2023-'),  # not a TS
        ('unit="mm[Hg]"', 'unit="mm Hg"'),  # unit with a space
        ("</patient>", '<age value="37"/></patient>'),  # the samples' age element
        ('<observation classCode="OBS" moodCode="EVN">', '<observation classCode="OBS">'),  # moodCode
        ("<custodian ", "<component><structuredBody/></component><custodian "),  # stray element
        ('moodCode="INT"', 'moodCode="DEF"'),  # x_DocumentSubstanceMood: EVN, INT, PRMS, PRP, RQO
        ('<encounterParticipant typeCode="ATND">', '<encounterParticipant typeCode="XYZ">'),  # vocabulary
    ],
)
def test_structure_check_rejects_what_the_cda_schema_rejects(old: str, new: str) -> None:
    document = render("C0002", CONTEXTS["C0002"]).decode()
    assert old in document
    broken = parse(document.replace(old, new, 1).encode())
    assert validate(broken)


def test_qualitative_results_and_unmapped_vitals_keep_their_own_codes() -> None:
    urine = copy.deepcopy(ex.LAB_RESULT)
    urine["id"] = "urine-protein"
    urine["code"] = {
        "coding": [{"system": s.LOINC, "code": "20454-5", "display": "尿蛋白"}],
        "text": "尿蛋白",
    }
    del urine["valueQuantity"], urine["referenceRange"], urine["interpretation"]
    urine["valueCodeableConcept"] = {
        "coding": [{"system": "urn:oid:2.16.156.10011.2.3.2.38", "code": "2"}],
        "text": "阴性",
    }
    temperature = copy.deepcopy(ex.BLOOD_PRESSURE)
    del temperature["component"]
    temperature["code"] = {
        "coding": [{"system": s.LOINC, "code": "8310-5", "display": "体温"}],
        "text": "体温",
    }
    temperature["valueQuantity"] = {"value": 36.8, "unit": "℃", "system": s.UCUM, "code": "Cel"}
    ctx = replace(CONTEXTS["C0002"], observations=[urine, temperature], diagnostic_report=None)
    root = parse(render("C0002", ctx))
    check_structure(root)
    assert de_value(root, "DE04.30.017.00", "displayName") == ["阴性"]
    assert de_value(root, "DE04.30.017.00", "codeSystem") == ["2.16.156.10011.2.3.2.38"]
    vital = '//v3:observation[v3:code/@code="8310-5"][v3:code/@codeSystem="2.16.840.1.113883.6.1"]'
    assert one(root, f"{vital}/v3:value/@value") == "36.8"
    assert one(root, f"{vital}/v3:value/@unit") == "Cel"


def test_unknown_document_code_is_refused() -> None:
    with pytest.raises(UnknownDocumentType, match="C0099"):
        render("C0099", BASE)


def test_names_and_text_are_escaped() -> None:
    nasty = 'A<&"B'
    p = patient()
    p["name"] = [{"use": "official", "text": nasty}]
    org = copy.deepcopy(ex.ORGANIZATION)
    org["name"] = '<医院> & "诊所"'
    reason = '转诊 <script>alert("x")</script> & 其他'
    ctx = replace(
        CONTEXTS["HSDC00.05"],
        patient=p,
        custodian=org,
        referral_reason=reason,
        document_id='DOC"<&>\t1',
    )
    document = render("HSDC00.05", ctx)
    assert b"<script>" not in document
    root = parse(document)
    check_structure(root)
    assert one(root, "//v3:recordTarget/v3:patientRole/v3:patient/v3:name/text()") == nasty
    assert one(root, "//v3:representedCustodianOrganization/v3:name/text()") == org["name"]
    assert values(root, '//v3:observation[v3:code/@code="DE06.00.177.00"]/v3:value/text()') == [reason]
    assert one(root, "/v3:ClinicalDocument/v3:id/@extension") == 'DOC"<&>\t1'


# What XML 1.0 can carry: no control characters (the writers escape markup, they do not drop these).
XML_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Cn"))


@settings(max_examples=50, deadline=None)
@given(
    name=st.text(alphabet=XML_CHARS, min_size=1, max_size=20),
    complaint=st.text(alphabet=XML_CHARS, min_size=1, max_size=40),
)
def test_any_text_round_trips(name: str, complaint: str) -> None:
    p = patient()
    p["name"] = [{"use": "official", "text": name}]
    enc = outpatient_visit()
    enc["reasonCode"] = [{"text": complaint}]
    root = parse(render("C0002", replace(CONTEXTS["C0002"], patient=p, encounter=enc)))
    assert one(root, "//v3:patient/v3:name/text()") == name
    assert values(root, '//v3:observation[v3:code/@code="DE04.01.119.00"]/v3:value/text()') == [complaint]


def test_timestamps_are_china_standard_time() -> None:
    assert ts("2023-03-04T01:12:00Z") == "20230304091200"
    assert ts("2023-03-04T09:12:00+08:00") == "20230304091200"
    assert ts("1985-07-12") == "19850712"
    root = parse(render("C0002", replace(CONTEXTS["C0002"], effective_time="2023-03-11T02:30:00Z")))
    assert one(root, "/v3:ClinicalDocument/v3:effectiveTime/@value") == "20230311103000"


def test_minimal_context_still_makes_a_valid_document() -> None:
    bare = replace(BASE, patient={"resourceType": "Patient", "id": "x", "name": [{"text": "张三"}]})
    for code in ("C0002", "C0032", "HSDB04.01"):
        root = parse(render(code, bare))
        check_structure(root)
        assert one(root, "//v3:patientRole/v3:id/@nullFlavor") == "UNK"
