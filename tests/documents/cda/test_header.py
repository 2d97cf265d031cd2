"""Header checks: what a good document gives, and each failure with its stable code and element path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from rhip.documents.cda import DOCUMENT_TYPES, CdaRejected, InstanceId, read_document
from rhip.documents.cda import errors as e

GOLDEN = Path(__file__).parent / "golden"
V3 = "urn:hl7-org:v3"
NS = {"v3": V3}
BASE = (GOLDEN / "C0053-synthetic.xml").read_bytes()
PSV = Path(__file__).resolve().parents[4] / "shared" / "reference" / "wst500-documents.psv"


def edit(change: Callable[[etree._Element], None], data: bytes = BASE) -> bytes:
    """The base document with ``change`` applied to its tree."""
    root = etree.fromstring(data)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def drop(xpath: str) -> Callable[[etree._Element], None]:
    """A change removing every element the XPath selects."""

    def change(root: etree._Element) -> None:
        for node in root.xpath(xpath, namespaces=NS):
            node.getparent().remove(node)

    return change


def set_attr(xpath: str, name: str, value: str) -> Callable[[etree._Element], None]:
    """A change setting an attribute on every element the XPath selects."""

    def change(root: etree._Element) -> None:
        for node in root.xpath(xpath, namespaces=NS):
            node.set(name, value)

    return change


def test_header_of_a_good_document() -> None:
    h = read_document(BASE).header
    assert h.document_id == InstanceId("2.16.156.10011.1.1", "C0053-429207e3-2e1f-4948-8e15-e1c582cef219")
    assert h.document_key == "2.16.156.10011.1.1:C0053-429207e3-2e1f-4948-8e15-e1c582cef219"
    assert (h.code, h.code_display, h.title, h.standard) == ("C0053", "出院小结", "出院小结", "WS/T 500.53")
    assert (h.effective_time, h.confidentiality, h.version_number) == ("2025-03-27T13:35:00+08:00", "N", 1)
    assert h.set_id == h.document_id
    assert h.template_ids == ("2.16.156.10011.2.1.1.73",)
    assert h.patient.identifiers == (
        ("urn:oid:2.16.156.10011.1.19", "5107261328238056912"),
        ("urn:oid:2.16.156.10011.1.12", "ZY2025032300000930005"),
        ("urn:oid:2.16.156.10011.1.3", "510726193802109063"),
    )
    assert (h.patient.name, h.patient.gender, h.patient.birth_date) == ("潘玉兰", "female", "1938-02-10")
    assert h.patient.telecom == ("15297073962",)
    assert h.patient.address is not None and h.patient.address["district"] == "北川羌族自治县"
    assert h.patient.marital_status is not None and h.patient.marital_status.code == "30"
    assert h.patient.ethnicity is not None and h.patient.ethnicity.code == "33"
    assert (h.author.time, h.author.person.id, h.author.person.name) == (
        "2025-03-27T13:35:00+08:00",
        "0023",
        "汤刚",
    )
    assert (h.author.organization.code, h.custodian.code, h.custodian.name) == (
        "510703H01",
        "510703H01",
        "绵阳市第一人民医院",
    )
    assert h.legal_authenticator is not None and h.legal_authenticator.role == "住院医师"
    enc = h.encounter
    assert enc is not None
    assert (enc.visit_number, enc.visit_system, enc.type) == (
        "ZY2025032300000930005",
        "urn:oid:2.16.156.10011.1.12",
        "IMP",
    )
    assert (enc.start, enc.end) == ("2025-03-23T11:23:00+08:00", "2025-03-27T13:35:00+08:00")
    assert enc.department is not None and enc.department.name == "神经内科"
    assert enc.discharge_disposition is not None and enc.discharge_disposition.code == "1"
    assert h.replaces is None and h.record_ids == ()


def test_report_numbers_are_not_patient_identifiers() -> None:
    h = read_document((GOLDEN / "C0006-exam-report.xml").read_bytes()).header
    assert ("urn:oid:2.16.156.10011.1.32", "US2025060200341") in h.record_ids
    assert all(s.split(".")[-1] not in ("32", "24") for s, _ in h.patient.identifiers)


def drop_attr(xpath: str, name: str) -> Callable[[etree._Element], None]:
    """A change removing an attribute from every element the XPath selects."""

    def change(root: etree._Element) -> None:
        for node in root.xpath(xpath, namespaces=NS):
            node.attrib.pop(name, None)

    return change


def test_a_uuid_root_alone_identifies_a_document() -> None:
    uuid = "6f2c1e0a-4b7d-4c2e-9a51-3d8f0b7e2a11"
    h = read_document(
        edit(lambda r: (set_attr("v3:id", "root", uuid)(r), drop_attr("v3:id", "extension")(r)))
    )
    assert h.header.document_id == InstanceId(uuid, "")


@pytest.mark.parametrize("placeholder", ["-", "", "0", "无", "000"])
def test_a_placeholder_set_id_is_no_set_id(placeholder: str) -> None:
    h = read_document(edit(set_attr("v3:setId", "extension", placeholder))).header
    assert h.set_id is None
    assert read_document(edit(drop_attr("v3:setId", "extension"))).header.set_id is None


def test_replacement_names_the_parent_document() -> None:
    def replace(root: etree._Element) -> None:
        related = etree.SubElement(root, f"{{{V3}}}relatedDocument", typeCode="RPLC")
        parent = etree.SubElement(related, f"{{{V3}}}parentDocument")
        etree.SubElement(parent, f"{{{V3}}}id", root="2.16.156.10011.1.1", extension="OLD-1")
        root.find(f"{{{V3}}}componentOf").addprevious(related)

    h = read_document(edit(replace)).header
    assert h.replaces == InstanceId("2.16.156.10011.1.1", "OLD-1")


D = "/ClinicalDocument"
CUSTODIAN_ID = D + "/custodian/assignedCustodian/representedCustodianOrganization/id"
PATIENT_IDS = "v3:recordTarget/v3:patientRole/v3:id | v3:recordTarget/v3:patientRole/v3:patient/v3:id"
FAILURES = [
    pytest.param(
        lambda: BASE.replace(b'xmlns="urn:hl7-org:v3"', b'xmlns="urn:hl7-org:v2"'),
        e.NOT_CDA,
        D,
        id="wrong namespace",
    ),
    pytest.param(
        lambda: BASE.replace(b"<ClinicalDocument ", b"<Document ").replace(
            b"</ClinicalDocument>", b"</Document>"
        ),
        e.NOT_CDA,
        "/Document",
        id="wrong root",
    ),
    pytest.param(lambda: edit(drop("v3:typeId")), e.TYPE_ID, D + "/typeId", id="missing typeId"),
    pytest.param(
        lambda: edit(set_attr("v3:typeId", "extension", "POCD_MT000002")),
        e.TYPE_ID,
        D + "/typeId",
        id="wrong typeId",
    ),
    pytest.param(lambda: edit(drop("v3:templateId")), e.TEMPLATE_ID, D + "/templateId", id="no templateId"),
    pytest.param(
        lambda: edit(set_attr("v3:templateId", "root", "2.16.156.10011.2.1.1.22")),
        e.TEMPLATE_MISMATCH,
        D + "/templateId",
        id="templateId of another type",
    ),
    pytest.param(lambda: edit(drop("v3:id")), e.DOCUMENT_ID, D + "/id", id="no id"),
    pytest.param(lambda: edit(set_attr("v3:id", "root", "")), e.DOCUMENT_ID, D + "/id", id="id without root"),
    pytest.param(
        lambda: edit(drop_attr("v3:id", "extension")), e.DOCUMENT_ID, D + "/id", id="OID id without extension"
    ),
    pytest.param(
        lambda: edit(set_attr("v3:id", "extension", "-")), e.DOCUMENT_ID, D + "/id", id="placeholder id"
    ),
    pytest.param(lambda: edit(set_attr("v3:id", "extension", "0")), e.DOCUMENT_ID, D + "/id", id="zero id"),
    pytest.param(lambda: edit(drop("v3:code")), e.DOCUMENT_CODE, D + "/code", id="no code"),
    pytest.param(
        lambda: edit(set_attr("v3:code", "codeSystem", "2.16.840.1.113883.6.1")),
        e.DOCUMENT_CODE,
        D + "/code",
        id="code in another system",
    ),
    pytest.param(
        lambda: edit(set_attr("v3:code", "code", "C0099")),
        e.UNKNOWN_TYPE,
        D + "/code",
        id="unknown document code",
    ),
    pytest.param(
        lambda: edit(drop("v3:effectiveTime")), e.EFFECTIVE_TIME, D + "/effectiveTime", id="no effectiveTime"
    ),
    pytest.param(
        lambda: edit(set_attr("v3:effectiveTime", "value", "2025-03-27")),
        e.EFFECTIVE_TIME,
        D + "/effectiveTime",
        id="bad effectiveTime",
    ),
    pytest.param(
        lambda: edit(set_attr("v3:effectiveTime", "value", "20250230120000")),
        e.EFFECTIVE_TIME,
        D + "/effectiveTime",
        id="impossible date",
    ),
    pytest.param(
        lambda: edit(drop("v3:confidentialityCode")),
        e.CONFIDENTIALITY,
        D + "/confidentialityCode",
        id="no confidentialityCode",
    ),
    pytest.param(
        lambda: edit(set_attr("v3:confidentialityCode", "code", "X")),
        e.CONFIDENTIALITY,
        D + "/confidentialityCode",
        id="unknown confidentiality",
    ),
    pytest.param(
        lambda: edit(set_attr("v3:versionNumber", "value", "one")),
        e.VERSION,
        D + "/versionNumber",
        id="bad versionNumber",
    ),
    pytest.param(
        lambda: edit(set_attr("v3:versionNumber", "value", "²")),
        e.VERSION,
        D + "/versionNumber",
        id="superscript versionNumber",
    ),
    pytest.param(
        lambda: edit(set_attr("v3:versionNumber", "value", "9" * 5000)),
        e.VERSION,
        D + "/versionNumber",
        id="huge versionNumber",
    ),
    pytest.param(
        lambda: edit(drop("v3:recordTarget")), e.RECORD_TARGET, D + "/recordTarget", id="no recordTarget"
    ),
    pytest.param(
        lambda: edit(drop(PATIENT_IDS)), e.PATIENT_ID, D + "/recordTarget/patientRole/id", id="no patient id"
    ),
    pytest.param(
        lambda: edit(set_attr("v3:recordTarget//v3:id", "extension", "-")),
        e.PATIENT_ID,
        D + "/recordTarget/patientRole/id",
        id="placeholder patient ids",
    ),
    pytest.param(lambda: edit(drop("v3:author")), e.AUTHOR, D + "/author", id="no author"),
    pytest.param(lambda: edit(drop("v3:custodian")), e.CUSTODIAN, CUSTODIAN_ID, id="no custodian"),
    pytest.param(
        lambda: edit(drop("v3:custodian//v3:representedCustodianOrganization/v3:id")),
        e.CUSTODIAN,
        CUSTODIAN_ID,
        id="custodian without id",
    ),
]


@pytest.mark.parametrize(("make", "code", "where"), FAILURES)
def test_header_failure(make: Callable[[], bytes], code: str, where: str) -> None:
    with pytest.raises(CdaRejected) as caught:
        read_document(make())
    assert caught.value.code == code
    assert caught.value.path == where
    assert caught.value.http_status == 400
    issue = caught.value.issues()[0]
    assert issue.rhip_code == code and issue.expression == (where,)


def test_a_report_number_alone_is_no_patient_id() -> None:
    only_report = edit(
        drop("v3:recordTarget/v3:patientRole/v3:id | v3:recordTarget/v3:patientRole/v3:patient/v3:id"),
        (GOLDEN / "C0007-synthetic.xml").read_bytes(),
    )
    root = etree.fromstring(only_report)
    role = root.find(f"{{{V3}}}recordTarget/{{{V3}}}patientRole")
    role.insert(0, etree.Element(f"{{{V3}}}id", root="2.16.156.10011.1.33", extension="JY1"))
    with pytest.raises(CdaRejected) as caught:
        read_document(etree.tostring(root))
    assert caught.value.code == e.PATIENT_ID


def test_both_type_id_extensions_are_accepted() -> None:
    for extension in ("POCD_HD000040", "POCD_MT000040"):
        assert read_document(edit(set_attr("v3:typeId", "extension", extension))).header.code == "C0053"


def test_document_types_table() -> None:
    assert len(DOCUMENT_TYPES) == 73
    for line in PSV.read_text(encoding="utf-8").splitlines() if PSV.exists() else ():
        part, code, _name, template = line.split("|")
        doc_type = DOCUMENT_TYPES[code]
        assert (doc_type.template_id, doc_type.standard) == (template, f"WS/T 500.{part}")
    assert DOCUMENT_TYPES["C0002"].display == "门（急）诊病历"
    assert DOCUMENT_TYPES["HSDC00.05"].display == "转诊（院）记录"
    assert DOCUMENT_TYPES["HSDB04.01"].template_id == "2.16.156.10011.2.1.1.12"
    assert DOCUMENT_TYPES["HSDC00.01"].template_source == "vendor"
    assert {t.template_source for c, t in DOCUMENT_TYPES.items() if c.startswith("C")} == {"sample"}
