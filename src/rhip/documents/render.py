"""Render any CDA R2 document (WS/T 500, WS/T 483 or other) as readable, self-contained and inert HTML.

:func:`render_html` shows the header (title, patient, author, custodian, date, confidentiality …) with
labels in Chinese or English, then every section: its title and its narrative block converted element by
element (table, list, paragraph, content with styleCode, br, caption, linkHtml), or, when a section has no
narrative, its coded entries in words.

Safety: the document is parsed with ``rhip.xmlsafe.parse_xml``; nothing from it reaches the output as
markup. Text and attribute values are escaped; only the narrative elements of NarrativeBlock.xsd become
HTML, mapped to fixed tags; attributes are dropped except colspan/rowspan/scope (checked) and a link's
href, kept only for http, https and mailto URLs and same-document anchors. Anything else — ``script``,
``iframe``, event attributes, elements of other namespaces — is reduced to its text. The page carries
a Content-Security-Policy that allows no script, no network and only its own inline style.
"""

from __future__ import annotations

import html
import re
from typing import Any

from lxml import etree

from rhip.cda.datatypes import V3
from rhip.cda.describe import Line, describe_entries
from rhip.cda.labels import CONFIDENTIALITY, LABELS, SEX
from rhip.core.errors import InvalidRequest
from rhip.xmlsafe import parse_xml

NS = {"v3": V3}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_STYLE_CLASSES = {"bold": "b", "underline": "u", "italics": "i", "emphasis": "em"}
_SAFE_HREF = re.compile(r"(https?://|mailto:|#)[^\s\x00-\x1f]*", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]{1,3}")
_SCOPES = frozenset({"row", "col", "rowgroup", "colgroup"})
_ID_CARD = "2.16.156.10011.1.3"
_CSS = (
    "body{font-family:system-ui,'PingFang SC','Microsoft YaHei',sans-serif;margin:2rem;color:#222;line-height:1.5}"
    "h1{font-size:1.5rem;margin:0 0 1rem}h2{font-size:1.15rem;border-bottom:1px solid #ccc;margin-top:1.5rem}"
    "dl.cda-header{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;margin:0}"
    "dl.cda-header dt{font-weight:600;color:#555}dl.cda-header dd{margin:0}"
    "table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #bbb;padding:.2rem .5rem;text-align:left}"
    ".b{font-weight:700}.u{text-decoration:underline}.i,.em{font-style:italic}.caption{font-weight:600}"
    ".entries{color:#333}.note{color:#777;font-style:italic}"
)


class NotACdaDocument(InvalidRequest):
    """The bytes are not a CDA R2 ClinicalDocument (or not well-formed, safe XML)."""

    code = "RHIP-CDA-0060"
    http_status = 422
    issue_type = "processing"


def render_html(data: bytes, *, lang: str = "zh", full_page: bool = True, mask_ids: bool = True) -> str:
    """The document as HTML: a whole page, or (``full_page=False``) an ``<article>`` to embed.

    ``lang`` is "zh" or "en" for the labels; ``mask_ids`` shows resident ID numbers as 5107**********0027.
    """
    if lang not in LABELS:
        raise InvalidRequest(f"lang must be one of {', '.join(sorted(LABELS))}", expression=["lang"])
    root = parse_xml(data)
    if etree.QName(root).namespace != V3 or etree.QName(root).localname != "ClinicalDocument":
        raise NotACdaDocument("the XML is not a CDA ClinicalDocument in the urn:hl7-org:v3 namespace")
    labels = LABELS[lang]
    title = _text(root, "v3:title") or _attr(root, "v3:code/@displayName") or labels["document"]
    article = (
        f'<article class="cda">{_header(root, labels, lang, title, mask_ids)}{_body(root, labels)}</article>'
    )
    if not full_page:
        return article
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{html_lang}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{article}</body></html>\n"
    )


# -- reading helpers ----------------------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _first(el: etree._Element, path: str) -> Any:
    found = el.xpath(path, namespaces=NS)
    return found[0] if isinstance(found, list) and found else None


def _text(el: etree._Element, path: str) -> str:
    node = _first(el, path)
    if node is None:
        return ""
    return " ".join("".join(node.itertext()).split()) if isinstance(node, etree._Element) else str(node)


def _attr(el: etree._Element, path: str) -> str:
    value = _first(el, path)
    return str(value) if value is not None else ""


def format_ts(value: str) -> str:
    """An HL7 TS as people read it: 20230311103000 → 2023-03-11 10:30; 19850712 → 1985-07-12."""
    match = re.fullmatch(
        r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+\-]\d{4})?", value or ""
    )
    if not match:
        return value
    year, month, day, hour, minute, _, zone = match.groups()
    text = "-".join(p for p in (year, month, day) if p)
    if hour:
        text += f" {hour}:{minute or '00'}"
    return f"{text} {zone}" if zone else text


def _mask(value: str) -> str:
    return value[:4] + "*" * (len(value) - 8) + value[-4:] if len(value) > 8 else "*" * len(value)


def _names(el: etree._Element | None, path: str) -> str:
    if el is None:
        return ""
    return "、".join(" ".join("".join(n.itertext()).split()) for n in el.xpath(path, namespaces=NS))


# -- the header ---------------------------------------------------------------------------------------
def _header(root: etree._Element, labels: dict[str, str], lang: str, title: str, mask_ids: bool) -> str:
    rows: list[tuple[str, str]] = []
    patient_role = _first(root, "v3:recordTarget/v3:patientRole")
    patient = _first(root, "v3:recordTarget/v3:patientRole/v3:patient")
    rows.append((labels["patient"], _names(patient, "v3:name")))
    sex_code = _attr(root, "v3:recordTarget/v3:patientRole/v3:patient/v3:administrativeGenderCode/@code")
    sex = SEX[lang].get(sex_code) or _attr(
        root, "v3:recordTarget/v3:patientRole/v3:patient/v3:administrativeGenderCode/@displayName"
    )
    rows.append((labels["sex"], sex))
    rows.append(
        (labels["birth"], format_ts(_attr(patient, "v3:birthTime/@value") if patient is not None else ""))
    )
    ids = [] if patient_role is None else patient_role.xpath(".//v3:id[@extension]", namespaces=NS)
    shown = []
    for ident in ids:
        value = str(ident.get("extension"))
        if ident.get("root") == _ID_CARD and mask_ids:
            value = _mask(value)
        name = labels.get(f"id:{ident.get('root')}", "")
        shown.append(f"{name}：{value}" if name else value)
    rows.append((labels["identifiers"], "；".join(shown)))
    author = _first(root, "v3:author")
    if author is not None:
        person = _names(author, "v3:assignedAuthor/v3:assignedPerson/v3:name")
        org = _names(author, "v3:assignedAuthor/v3:representedOrganization/v3:name")
        rows.append((labels["author"], "，".join(p for p in (person, org) if p)))
    rows.append(
        (labels["custodian"], _names(root, "v3:custodian//v3:representedCustodianOrganization/v3:name"))
    )
    rows.append((labels["recipient"], _names(root, "v3:informationRecipient//v3:name")))
    legal = _first(root, "v3:legalAuthenticator/v3:assignedEntity")
    if legal is not None:
        role = _attr(legal, "v3:code/@displayName")
        name = _names(legal, "v3:assignedPerson/v3:name")
        rows.append((labels["legal"], f"{name}（{role}）" if role and name else name or role))
    encounter = _first(root, "v3:componentOf/v3:encompassingEncounter")
    if encounter is not None:
        low = format_ts(
            _attr(encounter, "v3:effectiveTime/v3:low/@value") or _attr(encounter, "v3:effectiveTime/@value")
        )
        high = format_ts(_attr(encounter, "v3:effectiveTime/v3:high/@value"))
        place = _names(encounter, "v3:location//v3:serviceProviderOrganization/v3:name")
        period = f"{low} – {high}" if high else low
        rows.append((labels["encounter"], "，".join(p for p in (period, place) if p)))
    rows.append((labels["date"], format_ts(_attr(root, "v3:effectiveTime/@value"))))
    level = _attr(root, "v3:confidentialityCode/@code")
    rows.append((labels["confidentiality"], CONFIDENTIALITY[lang].get(level, level)))
    doc_id = _attr(root, "v3:id/@extension") or _attr(root, "v3:id/@root")
    rows.append((labels["document_id"], doc_id))
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows if v)
    return f'<header><h1>{_e(title)}</h1><dl class="cda-header">{items}</dl></header>'


# -- the body -----------------------------------------------------------------------------------------
def _body(root: etree._Element, labels: dict[str, str]) -> str:
    structured = _first(root, "v3:component/v3:structuredBody")
    if structured is not None:
        sections = structured.xpath("v3:component/v3:section", namespaces=NS)
        return "".join(_section(s, labels, 2) for s in sections)
    text = _first(root, "v3:component/v3:nonXMLBody/v3:text")
    if text is None:
        return ""
    if text.get("representation", "TXT") == "TXT" and (text.get("mediaType") or "text/plain") == "text/plain":
        return f"<section><pre>{_e(''.join(text.itertext()))}</pre></section>"
    return f'<section><p class="note">{_e(labels["unrendered"])}（{_e(text.get("mediaType", ""))}）</p></section>'


def _section(section: etree._Element, labels: dict[str, str], level: int) -> str:
    title = _text(section, "v3:title") or _attr(section, "v3:code/@displayName") or labels["section"]
    heading = min(level, 6)
    text = _first(section, "v3:text")
    narrative = _narrative(text) if text is not None else ""
    if not re.sub(r"<[^>]*>", "", narrative).strip():
        narrative = _entries(describe_entries(section), labels)
    children = "".join(
        _section(s, labels, level + 1) for s in section.xpath("v3:component/v3:section", namespaces=NS)
    )
    return f"<section><h{heading}>{_e(title)}</h{heading}>{narrative}{children}</section>"


def _entries(lines: list[Line], labels: dict[str, str]) -> str:
    """Coded entries in words (for a section without narrative), nested as they are grouped."""
    if not lines:
        return f'<p class="note">{_e(labels["no_entries"])}</p>'
    return f'<ul class="entries">{"".join(_entry_item(line) for line in lines)}</ul>'


def _entry_item(line: Line) -> str:
    if not line.text:  # a group without a name of its own (an uncoded organizer): its members stand alone
        return "".join(_entry_item(c) for c in line.children)
    nested = f"<ul>{''.join(_entry_item(c) for c in line.children)}</ul>" if line.children else ""
    return f"<li>{_e(line.text)}{nested}</li>"


# -- the narrative block ------------------------------------------------------------------------------
_SIMPLE = {
    "paragraph": "p",
    "sub": "sub",
    "sup": "sup",
    "tr": "tr",
    "thead": "thead",
    "tbody": "tbody",
    "tfoot": "tfoot",
    "colgroup": "colgroup",
}


def _narrative(el: etree._Element) -> str:
    """A section's ``text`` as HTML (its children; the text element itself becomes a div)."""
    return f'<div class="narrative">{_inner(el)}</div>'


def _inner(el: etree._Element) -> str:
    parts = [_e(el.text or "")]
    for child in el:
        if isinstance(child.tag, str):
            parts.append(_element(child))
        parts.append(_e(child.tail or ""))
    return "".join(parts)


def _element(el: etree._Element) -> str:
    qname = etree.QName(el)
    name = qname.localname if qname.namespace == V3 else None
    if name == "br":
        return "<br>"
    if name in _SIMPLE:
        tag = _SIMPLE[name]
        return f"<{tag}>{_inner(el)}</{tag}>"
    if name == "content":
        return _content(el)
    if name == "caption":  # a table's caption; elsewhere (paragraph, item, multimedia) a label
        parent = el.getparent()
        in_table = parent is not None and _is(parent, "table")
        return (
            f"<caption>{_inner(el)}</caption>" if in_table else f'<span class="caption">{_inner(el)}</span>'
        )

    if name == "linkHtml":
        href = el.get("href", "")
        if _SAFE_HREF.fullmatch(href):
            return f'<a href="{_e(href)}" rel="noopener noreferrer nofollow">{_inner(el)}</a>'
        return f"<span>{_inner(el)}</span>"
    if name == "list":
        tag = "ol" if el.get("listType") == "ordered" else "ul"
        caption = "".join(f'<p class="caption">{_inner(c)}</p>' for c in el if _is(c, "caption"))
        items = "".join(f"<li>{_inner(c)}</li>" for c in el if _is(c, "item"))
        return f"{caption}<{tag}>{items}</{tag}>"
    if name == "item":  # an item outside a list: keep its content
        return f"<div>{_inner(el)}</div>"
    if name == "table":
        return f"<table>{_inner(el)}</table>"
    if name in ("th", "td"):
        return f"<{name}{_cell_attributes(el)}>{_inner(el)}</{name}>"
    if name == "col":
        span = el.get("span", "")
        return f'<col span="{span}">' if _DIGITS.fullmatch(span) else "<col>"
    if name == "footnote":
        return f'<span class="footnote">［{_inner(el)}］</span>'
    if name == "footnoteRef":
        return f"<sup>{_e(el.get('IDREF', ''))}</sup>"
    if name == "renderMultiMedia":
        return f'<span class="note">［{_e(el.get("referencedObject", ""))}］</span>'
    # Not a narrative element (script, iframe, another namespace …): only its text is shown.
    return _e("".join(el.itertext()))


def _is(el: etree._Element, name: str) -> bool:
    return isinstance(el.tag, str) and etree.QName(el).namespace == V3 and etree.QName(el).localname == name


def _content(el: etree._Element) -> str:
    classes = sorted(
        {_STYLE_CLASSES[s.lower()] for s in el.get("styleCode", "").split() if s.lower() in _STYLE_CLASSES}
    )
    attr = f' class="{" ".join(classes)}"' if classes else ""
    tag = {"delete": "del", "insert": "ins"}.get(el.get("revised", ""), "span")
    return f"<{tag}{attr}>{_inner(el)}</{tag}>"


def _cell_attributes(el: etree._Element) -> str:
    out = []
    for attr in ("colspan", "rowspan"):
        value = el.get(attr, "")
        if _DIGITS.fullmatch(value):
            out.append(f' {attr}="{value}"')
    if el.get("scope") in _SCOPES:
        out.append(f' scope="{el.get("scope")}"')
    return "".join(out)


__all__ = ["CSP", "NotACdaDocument", "format_ts", "render_html"]
