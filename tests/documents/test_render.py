"""Rendering CDA documents as HTML (rhip.documents.render): every type, the narrative block, entries without
narrative, labels in two languages, masking, and documents built to inject markup or script."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType

import pytest
from lxml import etree

from rhip.cda.write import DOCUMENT_TYPES, render
from rhip.core.errors import InvalidRequest
from rhip.documents.render import CSP, NotACdaDocument, format_ts, render_html
from rhip.xmlsafe import XmlRejected

GOLDEN = Path(__file__).parent / "golden" / "render-C0002.html"


def _examples() -> ModuleType:
    """The example contexts of tests/cda (one per document type); test folders are not one package."""
    spec = importlib.util.spec_from_file_location(
        "cda_examples", Path(__file__).parents[1] / "cda" / "examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLES = _examples()


def page(document: bytes, **kwargs: object) -> etree._Element:
    """The rendered page parsed as HTML."""
    return etree.fromstring(render_html(document, **kwargs).encode(), etree.HTMLParser())  # type: ignore[arg-type]


def cda(
    body: str, *, title: str = "测试文档", patient: str = "王丽", custodian: str = "绵阳市中心医院"
) -> bytes:
    """A small ClinicalDocument around ``body`` (the structuredBody's components)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/><id root="2.16.156.10011.1.1" extension="X1"/>
<code code="C0002" codeSystem="2.16.156.10011.2.4" displayName="门（急）诊病历"/><title>{title}</title>
<effectiveTime value="20230311103000"/><confidentialityCode code="R" codeSystem="2.16.840.1.113883.5.25"/>
<recordTarget><patientRole><id root="2.16.156.10011.1.19" extension="5107000000123456789"/>
<patient><id root="2.16.156.10011.1.3" extension="510703198507120027"/><name>{patient}</name>
<administrativeGenderCode code="1" codeSystem="2.16.156.10011.2.3.3.4"/><birthTime value="19850712"/></patient></patientRole></recordTarget>
<author><time value="20230311"/><assignedAuthor><id root="2.16.156.10011.1.7" extension="7"/>
<assignedPerson><name>李建国</name></assignedPerson></assignedAuthor></author>
<custodian><assignedCustodian><representedCustodianOrganization><id root="2.16.156.10011.1.5" extension="H1"/>
<name>{custodian}</name></representedCustodianOrganization></assignedCustodian></custodian>
<component><structuredBody>{body}</structuredBody></component></ClinicalDocument>""".encode()


def section(text: str, title: str = "章节", entries: str = "") -> str:
    return f"<component><section><title>{title}</title>{text}{entries}</section></component>"


# -- every document type -------------------------------------------------------------------------------
@pytest.mark.parametrize("code", sorted(EXAMPLES.CONTEXTS))
def test_every_document_type_renders_its_header_and_sections(code: str) -> None:
    document = render(code, EXAMPLES.CONTEXTS[code])
    html = render_html(document)
    root = etree.fromstring(html.encode(), etree.HTMLParser())
    assert root.xpath("string(//h1)") == DOCUMENT_TYPES[code].title
    assert "王丽" in root.xpath("string(//dl)")
    source = etree.fromstring(document)
    titles = source.xpath("//v3:section/v3:title/text()", namespaces={"v3": "urn:hl7-org:v3"})
    assert root.xpath("//section/h2/text()") == titles
    assert "<script" not in html.lower()
    assert root.xpath("//meta[@http-equiv='Content-Security-Policy']/@content") == [CSP]


def test_golden_page_of_an_outpatient_record() -> None:
    html = render_html(render("C0002", EXAMPLES.CONTEXTS["C0002"]))
    if os.environ.get("RHIP_UPDATE_GOLDEN"):
        GOLDEN.write_text(html, "utf-8")
    assert html == GOLDEN.read_text("utf-8")


def test_labels_follow_the_language() -> None:
    document = render("C0002", EXAMPLES.CONTEXTS["C0002"])
    chinese, english = page(document), page(document, lang="en")
    assert chinese.xpath("//dt/text()")[:3] == ["患者", "性别", "出生日期"]
    assert english.xpath("//dt/text()")[:3] == ["Patient", "Sex", "Date of birth"]
    assert chinese.xpath("//html/@lang") == ["zh-CN"] and english.xpath("//html/@lang") == ["en"]
    assert "Female" in english.xpath("string(//dl)")
    with pytest.raises(InvalidRequest):
        render_html(document, lang="fr")


def test_resident_id_numbers_are_masked_unless_asked() -> None:
    document = render("C0002", EXAMPLES.CONTEXTS["C0002"])
    assert "510703198507120027" not in render_html(document)
    assert "5107**********0027" in render_html(document)
    assert "510703198507120027" in render_html(document, mask_ids=False)


def test_fragment_for_embedding() -> None:
    fragment = render_html(cda(section("<text>内容</text>")), full_page=False)
    assert fragment.startswith('<article class="cda">') and fragment.endswith("</article>")
    assert "<html" not in fragment


def test_header_values() -> None:
    root = page(cda(section("<text>x</text>")))
    shown = dict(zip(root.xpath("//dt/text()"), root.xpath("//dd/text()"), strict=True))
    assert shown["性别"] == "男"
    assert shown["密级"] == "限制"
    assert shown["文档日期"] == "2023-03-11 10:30"
    assert shown["作者"] == "李建国"


def test_timestamps_read_as_dates() -> None:
    assert format_ts("20230311103000") == "2023-03-11 10:30"
    assert format_ts("19850712") == "1985-07-12"
    assert format_ts("202303") == "2023-03"
    assert format_ts("20230311103000+0800") == "2023-03-11 10:30 +0800"
    assert format_ts("not a time") == "not a time"


# -- the narrative block --------------------------------------------------------------------------------
def test_narrative_elements_become_html() -> None:
    text = """<text><paragraph>第一段<br/>换行 <content styleCode="Bold Italics">重点</content>
    <content revised="delete">删去</content> H<sub>2</sub>O m<sup>2</sup></paragraph>
    <list listType="ordered"><caption>医嘱</caption><item>一</item><item>二</item></list>
    <table><caption>检验</caption><thead><tr><th scope="col">项目</th><th>结果</th></tr></thead>
    <tbody><tr><td>血糖</td><td colspan="2">7.8</td></tr></tbody></table>
    <linkHtml href="https://example.org/a?b=1&amp;c=2">链接</linkHtml>
    <paragraph><caption>注</caption>说明<footnote>脚注</footnote><footnoteRef IDREF="fn1"/></paragraph></text>"""
    root = page(cda(section(text)))
    narrative = root.xpath("//div[@class='narrative']")[0]
    assert narrative.xpath("p/br") and narrative.xpath("p/span[@class='b i']/text()") == ["重点"]
    assert narrative.xpath("p/del/text()") == ["删去"]
    assert narrative.xpath("p/sub/text()") == ["2"] and narrative.xpath("p/sup/text()")[0] == "2"
    assert narrative.xpath("p[@class='caption']/text()") == ["医嘱"]
    assert narrative.xpath("ol/li/text()") == ["一", "二"]
    assert narrative.xpath("table/caption/text()") == ["检验"]
    assert narrative.xpath("table/thead/tr/th[@scope='col']/text()") == ["项目"]
    assert narrative.xpath("table/tbody/tr/td[@colspan='2']/text()") == ["7.8"]
    assert narrative.xpath("a/@href") == ["https://example.org/a?b=1&c=2"]
    assert narrative.xpath("a/@rel") == ["noopener noreferrer nofollow"]
    assert narrative.xpath("p/span[@class='caption']/text()") == ["注"]
    assert narrative.xpath("p/span[@class='footnote']/text()") == ["［脚注］"]
    assert narrative.xpath("p/sup/text()")[-1] == "fn1"


def test_section_without_narrative_lists_its_entries() -> None:
    entries = """<entry><observation classCode="OBS" moodCode="EVN">
      <code code="DE02.10.022.00" codeSystem="2.16.156.10011.2.2.1" displayName="过敏史"/>
      <value xsi:type="ST">否认</value></observation></entry>
    <entry><organizer classCode="BATTERY" moodCode="EVN"><code displayName="化验"/><statusCode code="completed"/>
      <component><observation classCode="OBS" moodCode="EVN"><code code="DE04.50.001.00" displayName="ABO血型"/>
      <value xsi:type="CD" code="1" displayName="A型"/></observation></component>
      <component><observation classCode="OBS" moodCode="EVN"><code code="DE04.30.015.00" displayName="检验定量结果"/>
      <effectiveTime value="20230304080000"/><value xsi:type="PQ" value="7.8" unit="mmol/L"/></observation></component>
    </organizer></entry>
    <entry><substanceAdministration classCode="SBADM" moodCode="INT"><doseQuantity value="0.5" unit="g"/>
      <consumable><manufacturedProduct><manufacturedLabeledDrug><name>阿莫西林</name></manufacturedLabeledDrug>
      </manufacturedProduct></consumable></substanceAdministration></entry>"""
    root = page(cda(section("<text/>", "过敏与检验", entries)))
    items = [" ".join(li.xpath("text()")) for li in root.xpath("//ul[@class='entries']//li")]
    assert items[0] == "过敏史：否认"
    assert "ABO血型：A型（1）" in items and "检验定量结果：7.8 mmol/L（2023-03-04 08:00）" in items
    assert "阿莫西林，0.5 g" in items
    assert root.xpath("//ul[@class='entries']/li[2]/text()") == ["化验"]
    assert len(root.xpath("//ul[@class='entries']/li[2]/ul/li")) == 2  # the organizer's components nest


def test_an_uncoded_group_shows_its_members() -> None:
    entries = """<entry><organizer classCode="CLUSTER" moodCode="EVN"><statusCode code="completed"/>
      <component><observation classCode="OBS" moodCode="EVN"><code code="DE05.01.025.00" displayName="诊断名称"/>
      <value xsi:type="ST">肺炎</value></observation></component></organizer></entry>"""
    root = page(cda(section("<text/>", "诊断", entries)))
    assert root.xpath("//ul[@class='entries']/li/text()") == ["诊断名称：肺炎"]


def test_empty_section_says_so() -> None:
    root = page(cda(section("<text/>", "空")))
    assert root.xpath("//p[@class='note']/text()") == ["（本章节无内容）"]


def test_non_xml_body_text_is_shown_as_text() -> None:
    document = cda("").replace(
        b"<component><structuredBody></structuredBody></component>",
        b'<component><nonXMLBody><text mediaType="text/plain">&lt;b&gt;plain&lt;/b&gt; report</text></nonXMLBody></component>',
    )
    html = render_html(document)
    assert "<pre>&lt;b&gt;plain&lt;/b&gt; report</pre>" in html


# -- hostile documents -------------------------------------------------------------------------------
HOSTILE = [
    ("<text><script>alert(1)</script></text>", "alert(1)"),
    ('<text><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(2)</x:script></text>', "alert(2)"),
    ('<text><content onclick="alert(3)" styleCode="Bold">点</content></text>', "点"),
    ('<text><linkHtml href="javascript:alert(4)">点这里</linkHtml></text>', "点这里"),
    ('<text><linkHtml href=" JaVaScRiPt:alert(5)">点</linkHtml></text>', "点"),
    (
        '<text><linkHtml href="data:text/html,&lt;script&gt;alert(6)&lt;/script&gt;">点</linkHtml></text>',
        "点",
    ),
    ('<text><linkHtml href="vbscript:msgbox(7)">点</linkHtml></text>', "点"),
    ("<text>&lt;img src=x onerror=alert(8)&gt;</text>", "<img src=x onerror=alert(8)>"),
    (
        '<text><table><tbody><tr><td colspan="2 onmouseover=alert(9)">格</td></tr></tbody></table></text>',
        "格",
    ),
    ('<text><iframe src="https://evil.example/">框</iframe></text>', "框"),
    (
        '<text><footnoteRef IDREF="&quot;&gt;&lt;script&gt;alert(10)&lt;/script&gt;"/></text>',
        '"><script>alert(10)</script>',
    ),
    ('<text><content styleCode="x&quot; onmouseover=&quot;alert(11)">词</content></text>', "词"),
    ("<text><style>body{background:url(https://evil.example/)}</style></text>", "body{background"),
    (
        '<text><renderMultiMedia referencedObject="&lt;svg onload=alert(12)&gt;"/></text>',
        "<svg onload=alert(12)>",
    ),
]


@pytest.mark.parametrize(("narrative", "visible"), HOSTILE)
def test_markup_in_a_narrative_stays_inert(narrative: str, visible: str) -> None:
    html = render_html(cda(section(narrative)))
    body = html.split("<body>", 1)[1]
    assert not re.search(r"<(script|iframe|style|img|svg|object|embed)\b", body, re.IGNORECASE)
    root = etree.fromstring(html.encode(), etree.HTMLParser())
    for element in root.xpath("//body//*"):
        assert not any(name.lower().startswith("on") for name in element.attrib), (
            element.attrib
        )  # no event handler
        assert element.tag not in ("script", "iframe", "style", "img", "svg", "object", "embed", "form")
    hrefs = root.xpath("//@href | //@src")
    assert not any(h.strip().lower().startswith(("javascript:", "vbscript:", "data:")) for h in hrefs)
    assert visible in root.xpath("string(//div[@class='narrative'])")
    for href in root.xpath("//a/@href"):
        assert href.startswith(("https://", "http://", "mailto:", "#"))


def test_header_values_cannot_break_out() -> None:
    nasty = '"&gt;&lt;script&gt;alert(1)&lt;/script&gt;'
    html = render_html(
        cda(section("<text>x</text>"), title=nasty, patient=nasty, custodian="&lt;/dd&gt;&lt;b&gt;医院")
    )
    assert "<script" not in html and "</dd><b>" not in html
    root = etree.fromstring(html.encode(), etree.HTMLParser())
    assert root.xpath("string(//title)") == '"><script>alert(1)</script>'
    assert root.xpath("string(//h1)") == '"><script>alert(1)</script>'


def test_what_is_not_a_cda_document_is_refused() -> None:
    with pytest.raises(NotACdaDocument):
        render_html(b"<html><body>hi</body></html>")
    with pytest.raises(NotACdaDocument):
        render_html(b'<ClinicalDocument xmlns="urn:other"/>')
    with pytest.raises(XmlRejected):
        render_html(
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3">&e;</ClinicalDocument>'
        )
    with pytest.raises(XmlRejected):
        render_html(b"<ClinicalDocument")
