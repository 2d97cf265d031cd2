"""The structural CDA R2 validator (rhip.cda.schema): valid documents pass, and each kind of error is caught
and named with the path of the element."""

from __future__ import annotations

import pytest
from lxml import etree

from rhip.cda import datatypes
from rhip.cda.schema import models, validate
from rhip.cda.write import render
from rhip.xmlsafe import parse_xml

from .examples import CONTEXTS

GOOD = render("C0002", CONTEXTS["C0002"]).decode()


def problems_after(old: str, new: str, document: str = GOOD) -> list[str]:
    """The validator's problems once ``old`` (which must occur) is replaced by ``new``."""
    assert old in document, old
    return validate(parse_xml(document.replace(old, new, 1).encode()))


@pytest.mark.parametrize("code", sorted(CONTEXTS))
def test_every_written_document_type_is_valid(code: str) -> None:
    assert validate(parse_xml(render(code, CONTEXTS[code]))) == []


def test_every_type_in_the_model_file_is_defined() -> None:
    known = set(models()) | set(datatypes.CHECKERS) | {"StrucDocText"}
    for model in models().values():
        assert set(model.child_types.values()) <= known, model.name


def test_problems_name_the_element_path() -> None:
    found = problems_after("<title>", '<languageCode code="zh-CN"/><title>')
    assert found == [
        "/ClinicalDocument: children 'realmCode typeId templateId id code languageCode title effectiveTime "
        "confidentialityCode languageCode setId versionNumber recordTarget author custodian legalAuthenticator "
        "componentOf component' break the content model of ClinicalDocument: "
        + " ".join(models()["ClinicalDocument"].text.split())
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # element order and cardinality
        (
            '<custodian typeCode="CST">',
            '<title>又一个</title><custodian typeCode="CST">',
            "break the content model of ClinicalDocument",
        ),
        ('<statusCode code="completed"/>', "", "break the content model of Organizer"),
        # elements outside the model
        ("</patient>", '<age value="37" unit="岁"/></patient>', "/patient/age: <age> is not part of Patient"),
        (
            '<realmCode code="CN"/>',
            '<realmCode code="CN"/><sdtc:raceCode xmlns:sdtc="urn:hl7-org:sdtc"/>',
            "outside the CDA namespace",
        ),
        # attributes
        (
            '<observation classCode="OBS" moodCode="EVN">',
            '<observation classCode="OBS">',
            "@moodCode is required on Observation",
        ),
        (
            '<entryRelationship typeCode="COMP">',
            "<entryRelationship>",
            "@typeCode is required on EntryRelationship",
        ),
        ('moodCode="INT"', 'moodCode="DEF"', "@moodCode='DEF' is not allowed on SubstanceAdministration"),
        (
            '<encounterParticipant typeCode="ATND">',
            '<encounterParticipant typeCode="XYZ">',
            "@typeCode='XYZ' is not allowed",
        ),
        ("<patient ", '<patient xCheck="1..1" ', "attribute @xCheck is not allowed on Patient"),
        (
            "<patient ",
            '<patient xmlns:e="urn:e" e:flag="1" ',
            "attribute {urn:e}flag is not part of the CDA schema",
        ),
        # data types
        ('root="2.16.156.10011.1.3"', 'root="ID_CARD"', "is not an OID, UUID or RUID"),
        ('<effectiveTime value="2023', '<effectiveTime value="2023-', "is not an HL7 TS"),
        ('unit="mm[Hg]"', 'unit="mm Hg"', "is not a unit without spaces"),
        ('<value xsi:type="PQ" value="146"', '<value xsi:type="PQ" value="146mm"', "is not a number"),
        ('<versionNumber value="1"/>', '<versionNumber value="one"/>', "is not an integer"),
        ('<value xsi:type="ST">', "<value>", "a value needs xsi:type"),
        ('<value xsi:type="ST">', '<value xsi:type="STRING">', "is not a data type a value may take"),
        (
            '<value xsi:type="ST">',
            '<value xmlns:o="urn:other" xsi:type="o:ST">',
            "is not a type of the HL7 v3 namespace",
        ),
        (
            '<languageCode code="zh-CN"/>',
            '<languageCode code="zh-CN" codeSystem="1.2"/>',
            "attribute @codeSystem is not allowed",
        ),
        ('code="J18.9"', 'code="J18 9"', "is not a code (no spaces)"),
        (
            '<typeId root="2.16.840.1.113883.1.3"',
            '<typeId root="2.16.840.1.113883.1.4"',
            "typeId/@root must be",
        ),
        ('<setId root="2.16.156.10011.1.1"', "<setId", "an identifier needs @root"),
        ('<low value="20230304091200"/>', "<low/>", "a point in time needs @value"),
        ("<realmCode ", '<realmCode nullFlavor="WHO" ', "is not a NullFlavor code"),
        (
            '<administrativeGenderCode code="2"',
            '<administrativeGenderCode code="2" foo="1"',
            "attribute @foo is not allowed here",
        ),
        ("<name>王丽</name>", "<name>王<b>丽</b></name>", "is not a name part"),
        ("<state>四川省</state>", "<zone>四川省</zone>", "is not an address part"),
        ('<telecom value="tel:13981612345"/>', "<telecom/>", "needs @value"),
        # character data where only elements may be
        (
            '<patientRole classCode="PAT">',
            '<patientRole classCode="PAT">文字',
            "character data is not allowed here",
        ),
        # the narrative block
        ("<text><list>", "<text><div/><list>", "<div> is not allowed in the narrative <text>"),
        (
            "<text><list>",
            '<text><paragraph onclick="x">段</paragraph><list>',
            "attribute @onclick is not allowed here",
        ),
        (
            "<text><list>",
            '<text><list listType="bulleted"><item>a</item></list><list>',
            "@listType='bulleted' is not allowed",
        ),
        (
            "<text><list>",
            "<text><table><tbody><tr><td>1</td></tr></tbody><thead><tr><th>h</th></tr></thead></table><list>",
            "are out of order",
        ),
        ("<text><list>", "<text><item>孤立</item><list>", "<item> is not allowed in the narrative <text>"),
        ("<text><list>", "<text><list>文字", "<list> holds no character data"),
    ],
)
def test_each_kind_of_error_is_caught(old: str, new: str, expected: str) -> None:
    found = problems_after(old, new)
    assert any(expected in p for p in found), found
    assert all(p.startswith("/ClinicalDocument") for p in found)


def test_the_samples_national_extensions_are_reported() -> None:
    found = problems_after("<precinct>城郊街道</precinct>", "<township>城郊街道</township>")
    assert any("<township> is not an address part (AD)" in p for p in found)
    found = problems_after("</patient>", '<age value="37" unit="岁"/></patient>')
    assert any("<age> is not part of Patient" in p for p in found)
    found = problems_after('<patientRole classCode="PAT">', '<patientRole classCode="PAT"><patientType/>')
    assert any("<patientType> is not part of PatientRole" in p for p in found)


def test_root_must_be_a_clinical_document() -> None:
    assert validate(etree.fromstring(b'<ClinicalDocument xmlns="urn:other"/>')) == [
        "/ClinicalDocument: the root element must be ClinicalDocument in urn:hl7-org:v3"
    ]
    assert validate(etree.fromstring(b'<Document xmlns="urn:hl7-org:v3"/>'))


def test_substance_mood_follows_voc_xsd() -> None:
    # x_DocumentSubstanceMood is EVN, INT, PRMS, PRP, RQO: a planned medication may be RQO.
    assert problems_after('moodCode="INT"', 'moodCode="RQO"') == []


def test_a_schema_valid_sample_shape_passes() -> None:
    """Shapes other writers use and the schema allows: nested sections, tables, act, procedure, supply."""
    body = """<component><section><code code="10160-0" codeSystem="2.16.840.1.113883.6.1"/><title>用药</title>
    <text><table><caption>表</caption><thead><tr><th>药</th></tr></thead><tbody><tr><td>阿司匹林<br/>
    <content styleCode="Bold">每日</content></td></tr></tbody></table><footnote>注<sup>1</sup></footnote></text>
    <entry typeCode="DRIV"><act classCode="ACT" moodCode="EVN"><code nullFlavor="NA"/><statusCode code="completed"/>
    <entryRelationship typeCode="SUBJ" inversionInd="false"><procedure classCode="PROC" moodCode="EVN">
    <code code="47.09" codeSystem="2.16.156.10011.2.3.3.12"/><targetSiteCode code="1"/></procedure></entryRelationship></act></entry>
    <entry><supply classCode="SPLY" moodCode="INT"><quantity value="24" unit="1"/><product><manufacturedProduct>
    <manufacturedLabeledDrug><name>阿司匹林</name></manufacturedLabeledDrug></manufacturedProduct></product></supply></entry>
    <entry><substanceAdministration classCode="SBADM" moodCode="RQO"><effectiveTime xsi:type="PIVL_TS">
    <period value="8" unit="h"/></effectiveTime><doseQuantity><low value="1" unit="1"/><high value="2" unit="1"/></doseQuantity>
    <consumable><manufacturedProduct><manufacturedMaterial><name>药</name></manufacturedMaterial></manufacturedProduct></consumable>
    </substanceAdministration></entry>
    <component><section><title>子章节</title><text><paragraph><caption>注</caption>内容</paragraph></text></section></component>
    </section></component>"""
    document = (
        GOOD.split("<component><structuredBody>")[0]
        + f"<component><structuredBody>{body}</structuredBody></component></ClinicalDocument>"
    )
    assert validate(parse_xml(document.encode())) == []
