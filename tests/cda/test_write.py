"""The writers of C0001 病历概要, C0006 检查报告 and HSDA00.01 个人基本健康信息登记 (rhip.cda.write), and the
package's document registry. The nine older types are tested in tests/synth/test_cda.py."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from rhip.cda.errors import DocumentContentMissing
from rhip.cda.schema import validate
from rhip.cda.write import DOCUMENT_TYPES, RENDERERS, render
from rhip.xmlsafe import parse_xml

from . import examples as ex

NS = {"v3": "urn:hl7-org:v3"}
PSV = Path(__file__).resolve().parents[3] / "shared" / "reference" / "wst500-documents.psv"


def doc(code: str, **changes: Any) -> etree._Element:
    """The document of ``code`` from the example context (with changes), checked against the CDA model."""
    ctx = replace(ex.CONTEXTS[code], **changes) if changes else ex.CONTEXTS[code]
    root = parse_xml(render(code, ctx))
    assert validate(root) == []
    return root


def values(root: etree._Element, path: str) -> list[str]:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    return [str(x) for x in found]


def de(root: etree._Element, element: str, attr: str = "") -> list[str]:
    """The values of the observations coded with a WS 363 data element (text, or an attribute)."""
    tail = f"/@{attr}" if attr else "/text()"
    return values(root, f'//v3:observation[v3:code/@code="{element}"]/v3:value{tail}')


def test_the_registry_has_twelve_types_with_their_templates() -> None:
    assert set(RENDERERS) == set(DOCUMENT_TYPES) == set(ex.CONTEXTS)
    assert (DOCUMENT_TYPES["C0001"].template_id, DOCUMENT_TYPES["C0001"].title) == (
        "2.16.156.10011.2.1.1.21",
        "病历概要",
    )
    assert (DOCUMENT_TYPES["C0006"].template_id, DOCUMENT_TYPES["C0006"].title) == (
        "2.16.156.10011.2.1.1.26",
        "检查报告",
    )
    assert DOCUMENT_TYPES["HSDA00.01"].template_id == "2.16.156.10011.2.1.1.1"
    assert DOCUMENT_TYPES["HSDA00.01"].title == "个人基本健康信息登记"


@pytest.mark.parametrize("code", ["C0001", "C0006"])
def test_wst500_codes_match_the_reference_list(code: str) -> None:
    if not PSV.exists():
        pytest.skip(f"{PSV} not present")
    rows = {line.split("|")[1]: line.split("|") for line in PSV.read_text("utf-8").splitlines() if line}
    assert rows[code][3] == DOCUMENT_TYPES[code].template_id
    assert rows[code][2] == re.sub(r"[（）()]", "", DOCUMENT_TYPES[code].title)


# -- C0001 病历概要 -------------------------------------------------------------------------------------
def test_summary_header_has_record_ids_and_contact() -> None:
    root = doc("C0001")
    role = "/v3:ClinicalDocument/v3:recordTarget/v3:patientRole"
    assert values(root, f"{role}/v3:id/@root") == ["2.16.156.10011.1.2", "2.16.156.10011.1.19"]
    contact = "/v3:ClinicalDocument/v3:participant[@typeCode='NOT']/v3:associatedEntity[@classCode='ECON']"
    assert values(root, f"{contact}/v3:associatedPerson/v3:name/text()") == ["张强"]
    assert values(root, f"{contact}/v3:code/@displayName") == ["丈夫"]
    assert values(root, f"{contact}/v3:telecom/@value") == ["tel:13900000001"]


def test_summary_separates_past_history_from_the_visit() -> None:
    root = doc("C0001")
    assert de(root, "DE02.10.026.00") == ["原发性高血压（I10），2019-05-10确诊"]
    event = '//v3:section[v3:title="卫生事件"]'
    assert values(root, f'{event}//v3:observation[v3:code/@code="DE05.01.024.00"]/v3:value/@code') == [
        "J18.9"
    ]
    assert de(root, "DE02.01.060.00", "code") == ["3"]
    assert de(root, "DE01.00.014.00") == ["ZY2023000456"]
    assert de(root, "DE06.00.092.00", "value") == ["20230304091200"]
    assert de(root, "DE06.00.017.00", "value") == ["20230311100000"]
    assert de(root, "DE05.10.053.00") == ["咳嗽、发热3天"]
    assert de(root, "DE08.50.022.00") == ["阿莫西林胶囊 0.25g"]
    assert de(root, "DE06.00.136.00") == ["口服，每次0.5g，每日3次"]
    assert de(root, "DE02.01.039.00") == ["李建国"]
    assert values(root, f"{event}//v3:procedure/v3:code/@code") == ["47.09"]


def test_summary_history_sections() -> None:
    root = doc("C0001")
    assert de(root, "DE04.50.001.00", "code") == ["1"]  # A型
    assert de(root, "DE04.50.010.00", "code") == ["2"]  # Rh阳性
    assert values(
        root, "//v3:organizer[v3:component/v3:observation/v3:code/@code='DE04.50.001.00']/@classCode"
    ) == ["BATTERY"]
    assert de(root, "DE02.10.022.00") == ["青霉素类（药物）：皮疹"]
    assert de(root, "DE02.10.101.00") == ["2023-06-05 百白破疫苗 第2剂 批号202301A17"]
    assert de(root, "DE02.10.103.00") == ["父亲：原发性高血压"]
    codes = values(root, "//v3:section/v3:code/@code")
    assert codes == ["30954-2", "11348-0", "48765-2", "11369-6", "10157-6"]


def test_summary_of_an_outpatient_visit_and_of_a_bare_context() -> None:
    root = doc("C0001", encounter=ex.ENCOUNTER)
    assert de(root, "DE02.01.060.00", "code") == ["1"]
    assert de(root, "DE01.00.010.00") == ["MZ2023000123-0004"]
    assert not de(root, "DE06.00.092.00")
    bare = doc(
        "C0001",
        encounter=None,
        conditions=(),
        observations=(),
        medication_requests=(),
        immunizations=(),
        allergies=(),
        procedures=(),
        family_history=(),
    )
    assert values(bare, "//v3:section/v3:title/text()") == ["病历概要"]


# -- C0006 检查报告 -------------------------------------------------------------------------------------
def test_exam_report_header() -> None:
    root = doc("C0006")
    role = "/v3:ClinicalDocument/v3:recordTarget/v3:patientRole"
    assert values(root, f"{role}/v3:id/@extension") == ["MZ2023000123", "JC2023030400008", "SQ2023030400021"]
    assert values(root, "/v3:ClinicalDocument/v3:author/v3:time/@value") == ["20230304113000"]
    assert values(root, "//v3:legalAuthenticator/v3:assignedEntity/v3:code/@displayName") == ["审核医师"]


def test_exam_report_items_findings_and_impression() -> None:
    root = doc("C0006")
    assert de(root, "DE04.30.018.00") == ["放射"]
    assert de(root, "DE02.10.027.00") == ["胸部CT平扫"]
    assert de(root, "DE04.30.019.00", "code") == ["24627-2"]
    assert de(root, "DE04.50.131.00") == [
        "右肺下叶见斑片状高密度影，边界模糊。",
        "胸部CT：右肺下叶见斑片状高密度影，边界模糊。",
    ]
    assert de(root, "DE04.50.132.00") == ["右肺下叶肺炎。"]
    assert de(root, "DE08.10.026.00") == ["呼吸内科"]
    assert de(root, "DE08.10.013.00") == ["绵阳市中心医院"]
    assert de(root, "DE04.01.119.00") == ["咳嗽、发热3天"]
    assert de(root, "DE05.01.024.00", "code") == ["J18.9"]


def test_exam_report_quantitative_and_coded_results() -> None:
    size = copy.deepcopy(ex.CT_FINDING)
    size.update(
        id="obs-size",
        valueQuantity={"value": 12.5, "unit": "mm", "code": "mm"},
        interpretation=[{"coding": [{"code": "H"}]}],
    )
    del size["valueString"]
    sign = copy.deepcopy(ex.CT_FINDING)
    sign.update(
        id="obs-sign",
        valueCodeableConcept={
            "coding": [{"system": "urn:oid:2.16.156.10011.2.3.2.38", "code": "2"}],
            "text": "异常",
        },
    )
    del sign["valueString"]
    report = copy.deepcopy(ex.CT_REPORT)
    report["result"] = [{"reference": "Observation/obs-size"}, {"reference": "Observation/obs-sign"}]
    del report["conclusion"]
    root = doc("C0006", observations=[size, sign], diagnostic_report=report)
    assert de(root, "DE04.30.015.00", "value") == ["12.5"]
    assert de(root, "DE04.30.015.00", "unit") == ["mm"]
    assert values(root, '//v3:observation[v3:code/@code="DE04.30.015.00"]/v3:interpretationCode/@code') == [
        "H"
    ]
    assert de(root, "DE04.30.017.00", "code") == ["2"]
    assert de(root, "DE04.30.017.00", "codeSystem") == ["2.16.156.10011.2.3.2.38"]
    assert not de(root, "DE04.50.132.00")


def test_exam_report_needs_a_report() -> None:
    with pytest.raises(DocumentContentMissing, match="diagnostic_report"):
        render("C0006", replace(ex.CONTEXTS["C0006"], diagnostic_report=None))


def test_exam_report_without_order_or_encounter() -> None:
    root = doc("C0006", service_requests=(), encounter=None)
    assert values(root, "//v3:patientRole/v3:id/@root") == ["2.16.156.10011.1.11", "2.16.156.10011.1.32"]
    assert not values(root, "//v3:componentOf")


# -- HSDA00.01 个人基本健康信息登记 -----------------------------------------------------------------------
def test_personal_record_has_no_visit_and_carries_the_history() -> None:
    root = doc("HSDA00.01", encounter=ex.ENCOUNTER)  # an encounter given by mistake is not written
    assert not values(root, "//v3:componentOf")
    assert values(root, "//v3:patientRole/v3:id/@root") == ["2.16.156.10011.1.2", "2.16.156.10011.1.19"]
    assert values(root, "//v3:participant/v3:associatedEntity/v3:associatedPerson/v3:name/text()") == ["张强"]
    assert de(root, "DE02.10.022.00") == ["青霉素类（药物）：皮疹"]
    assert de(root, "DE05.01.024.00", "code") == ["I10"]
    assert de(root, "DE02.10.026.00") == ["原发性高血压（I10），2019-05-10确诊"]
    assert de(root, "DE02.10.061.00") == ["阑尾切除术（47.09），2010-06-01"]
    assert values(root, "//v3:procedure/v3:effectiveTime/@value") == ["20100601100000"]
    assert de(root, "DE02.10.103.00") == ["父亲：原发性高血压"]
    assert de(root, "DE04.50.001.00", "displayName") == ["A型"]


def test_personal_record_of_someone_without_history() -> None:
    root = doc("HSDA00.01", conditions=(), observations=(), allergies=(), procedures=(), family_history=())
    assert values(root, "//v3:section/v3:title/text()") == ["个人基本健康信息登记"]
    assert values(root, "//v3:patient/v3:name/text()") == ["王丽"]


def test_entered_in_error_allergies_are_left_out() -> None:
    wrong = copy.deepcopy(ex.ALLERGY)
    wrong["verificationStatus"] = {"coding": [{"code": "entered-in-error"}]}
    root = doc("HSDA00.01", allergies=[wrong])
    assert not de(root, "DE02.10.022.00")


@pytest.mark.parametrize("code", ["C0001", "C0006", "HSDA00.01"])
def test_text_is_escaped(code: str) -> None:
    nasty = '<script>alert("x")</script> & 其他'
    allergy = copy.deepcopy(ex.ALLERGY)
    allergy["code"] = {"text": nasty}
    report = copy.deepcopy(ex.CT_REPORT)
    report["conclusion"] = nasty
    patient = copy.deepcopy(ex.PATIENT)
    patient["contact"][0]["name"] = {"text": nasty}
    document = render(
        code, replace(ex.CONTEXTS[code], allergies=[allergy], diagnostic_report=report, patient=patient)
    )
    assert b"<script>" not in document
    root = parse_xml(document)
    assert validate(root) == []
    shown = values(root, "//v3:associatedPerson/v3:name/text() | //v3:observation/v3:value/text()")
    assert nasty in shown or any(nasty in v for v in shown)
