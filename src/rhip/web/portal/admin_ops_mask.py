"""A refused message or document made fit for an operator's screen: only its structure and what describes the
sender are kept; every value that could be a person's (a name, address, birth date, ID number, phone, free
text) is blanked.

Masking by lists of personal fields leaks whatever the list forgot (a field it did not name, free text, a
segment written in lower case), so each format is shown through an ALLOWLIST of what is kept:

* HL7 v2: each segment's id (normalised: stripped, upper case) and set id, and the MSH/FHS/BHS header
  (sender, receiver, type, control id); every other non-empty component becomes ``***``, its separators kept
  so the structure still shows.
* XML (v3, CDA): the element names and the structural attributes (``root``, ``code``, ``classCode`` …;
  ``extension`` only of ``templateId``, ``interactionId`` and ``typeId``, as that of an ``<id>`` is an ID
  number); every text node, comment and other attribute is blanked. XML that does not parse (with the
  hardened parser) keeps only its tag names.
* FHIR JSON: the values of structural keys (``resourceType``, ``id``, ``system``, ``code``, ``url``,
  ``status``, ``use``, references that are not to a Patient …); every other string or number is blanked.
* Anything else: every run of letters (Chinese, pinyin, English) or digits and every date is blanked.

Reasons of refusals are code-written sentences that quote the values they refused: :func:`masked_reason`
blanks what they quote, dates, long digit runs and Chinese.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from lxml import etree

from rhip.core.errors import RhipError
from rhip.exchange.hl7v2.charset import readable
from rhip.security.masking import mask_text
from rhip.xmlsafe import parse_xml

HIDDEN = "***"

# -- HL7 v2 ---------------------------------------------------------------------------------------------
HEADERS = frozenset({"MSH", "FHS", "BHS"})  # kept whole: they describe the sender and the message
# other segments: the 1-based fields kept besides the set id (codes about the message, not the person)
V2_KEPT: dict[str, frozenset[int]] = {"MSA": frozenset({1, 2}), "EVN": frozenset({1})}
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_SET_ID = re.compile(r"[0-9]{1,4}")

# -- XML ------------------------------------------------------------------------------------------------
XML_ATTRIBUTES = frozenset(
    {
        "root",
        "code",
        "codeSystem",
        "codeSystemName",
        "codeSystemVersion",
        "classCode",
        "moodCode",
        "typeCode",
        "determinerCode",
        "contextControlCode",
        "contextConductionInd",
        "inversionInd",
        "negationInd",
        "nullFlavor",
        "use",
        "mediaType",
        "representation",
        "ITSVersion",
        "type",  # xsi:type
        "schemaLocation",
    }
)
XML_EXTENSION_OWNERS = frozenset({"templateId", "interactionId", "typeId"})  # their @extension is a code
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?")
_XML_TOKEN = re.compile(r"<!--.*?(?:-->|$)|<!\[CDATA\[.*?(?:\]\]>|$)|<[^<>]*>?|[^<]+", re.DOTALL)
_XML_TAG = re.compile(r"<\s*([/?!]?)\s*([^\s/>?]*)([^>]*?)(/?)(\??)>?$", re.DOTALL)

# -- FHIR JSON ------------------------------------------------------------------------------------------
JSON_KEYS = frozenset({"resourceType", "id", "system", "code", "url", "status", "use", "method"})
_TOKEN = re.compile(r"[A-Za-z0-9_.:/#?=&%+|-]{0,512}")
_JSON_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

# -- text -----------------------------------------------------------------------------------------------
_DATE = re.compile(
    r"(?<![0-9])(?:1[89]|20)[0-9]{2}\s*[-/.年]\s*[01]?[0-9]\s*[-/.月]\s*[0-3]?[0-9](?![0-9])(?:\s*日)?"
    r"(?:[T ]?[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_COMPACT_DATE = re.compile(r"(?<![0-9])(?:1[89]|20)[0-9]{2}[01][0-9][0-3][0-9](?:[0-9]{2,})?(?![0-9])")
_WORD_OR_NUMBER = re.compile(r"[^\W_]+")  # any run of letters (any script) or digits
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]+")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’|「[^」\n]*」")
_LONG_DIGITS = re.compile(r"(?<![0-9])[0-9]{6,}(?![0-9])")


def masked_content(raw: bytes, channel: str) -> str:
    """``raw`` as text with everything but its structure and its sender blanked."""
    head = raw.lstrip()[:3].upper()
    if channel == "mllp" or head in (b"MSH", b"FHS", b"BHS"):
        return mask_text(_mask_v2(readable(raw)))
    text = raw.decode("utf-8", "replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return mask_text(masked_free_text(text))
        return mask_text(orjson.dumps(_mask_json(data), option=orjson.OPT_INDENT_2).decode())
    if stripped.startswith("<"):
        try:
            root = parse_xml(raw)
        except (RhipError, ValueError):
            return mask_text(_mask_xml_text(text))
        return mask_text(_mask_xml(root))
    return mask_text(masked_free_text(text))


def masked_reason(reason: str) -> str:
    """A refusal's reason with the values it quotes, dates, long digit runs and Chinese blanked."""
    text = _QUOTED.sub(lambda m: m.group(0)[0] + HIDDEN + m.group(0)[-1], reason)
    text = _DATE.sub(HIDDEN, text)
    text = _LONG_DIGITS.sub(HIDDEN, text)
    return mask_text(_CJK.sub(HIDDEN, text))


def masked_free_text(text: str) -> str:
    """Text of no known format: only its punctuation and layout are left."""
    return _WORD_OR_NUMBER.sub(HIDDEN, _DATE.sub(HIDDEN, text))


# -- HL7 v2 ---------------------------------------------------------------------------------------------


def _mask_v2(text: str) -> str:
    """Each segment on its own line: headers kept, elsewhere only the segment id and set id."""
    segments = [s.strip() for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r")]
    segments = [s for s in segments if s]
    sep, encoding = "|", "^~\\&"
    for s in segments:  # the separators the message declares
        if s[:3].upper() in HEADERS and len(s) > 3:
            sep = s[3]
            declared = s[4:].split(sep, 1)[0]
            encoding = declared[:4] if declared else encoding
            break
    pieces = re.compile("|".join(re.escape(c) for c in {*encoding, "\\"} if c and c != sep) or "$^")
    lines = []
    for segment in segments:
        name = segment[:3].upper()
        if name in HEADERS and segment[3:4] == sep:
            lines.append(name + segment[3:])
            continue
        fields = segment.split(sep)
        head = fields[0].strip().upper()
        fields[0] = head if _SEGMENT_ID.fullmatch(head) else HIDDEN
        kept = V2_KEPT.get(fields[0], frozenset())
        for i in range(1, len(fields)):
            value = fields[i]
            if not value or (i in kept and _token(value)):
                continue
            if i == 1 and _SET_ID.fullmatch(value.strip()):
                fields[i] = value.strip()
                continue
            fields[i] = _blank_pieces(value, pieces)
        lines.append(sep.join(fields))
    return "\n".join(lines)


def _blank_pieces(value: str, separators: re.Pattern[str]) -> str:
    """``value`` with every non-empty component, repetition and subcomponent blanked, separators kept."""
    out, start = [], 0
    for m in separators.finditer(value):
        out.append(HIDDEN if value[start : m.start()] else "")
        out.append(m.group(0))
        start = m.end()
    out.append(HIDDEN if value[start:] else "")
    return "".join(out)


# -- XML ------------------------------------------------------------------------------------------------


def _mask_xml(root: etree._Element) -> str:
    """A parsed document with its text, comments and non-structural attributes blanked."""
    for node in root.iter():
        if node.tail and node.tail.strip():
            node.tail = HIDDEN
        if not isinstance(node.tag, str):  # a comment or processing instruction
            if node.text:
                node.text = HIDDEN
            continue
        if node.text and node.text.strip():
            node.text = HIDDEN
        qname = etree.QName(node)
        if not _XML_NAME.fullmatch(qname.localname):
            node.tag = etree.QName(qname.namespace, "hidden").text if qname.namespace else "hidden"
        owner = etree.QName(node).localname
        for attribute in list(node.attrib):
            local = etree.QName(attribute).localname
            keep = local in XML_ATTRIBUTES or (local == "extension" and owner in XML_EXTENSION_OWNERS)
            if not keep or not _token(node.attrib[attribute]):
                node.attrib[attribute] = HIDDEN
    return str(etree.tostring(root, encoding="unicode"))


def _mask_xml_text(text: str) -> str:
    """XML that does not parse: tag names kept, attributes, text, comments and CDATA blanked."""
    out = []
    for m in _XML_TOKEN.finditer(text):
        token = m.group(0)
        if token.startswith("<!--"):
            out.append(f"<!--{HIDDEN}-->")
        elif token.startswith("<![CDATA["):
            out.append(f"<![CDATA[{HIDDEN}]]>")
        elif token.startswith("<"):
            out.append(_xml_tag(token))
        else:
            out.append(token if not token.strip() else HIDDEN)
    return "".join(out)


def _xml_tag(token: str) -> str:
    tag = _XML_TAG.match(token)
    if tag is None:
        return HIDDEN
    mark, name, attributes, close, question = tag.groups()
    name = name if _XML_NAME.fullmatch(name) else HIDDEN
    rest = f" {HIDDEN}" if attributes.strip() else ""
    return f"<{mark}{name}{rest}{close}{question}>"


# -- FHIR JSON ------------------------------------------------------------------------------------------


def _mask_json(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for n, (k, v) in enumerate(value.items()):
            out[k if _JSON_KEY.fullmatch(k) else f"{HIDDEN}{n}"] = _mask_json(v, k)
        return out
    if isinstance(value, list):
        return [_mask_json(v, key) for v in value]
    if isinstance(value, str):
        return value if value and _kept_json(key, value) else (HIDDEN if value else value)
    if isinstance(value, bool) or value is None:
        return value
    return HIDDEN  # numbers


def _token(value: str) -> bool:
    """Whether ``value`` can be kept as a code: no spaces, no letters beyond ASCII, no date in it."""
    return bool(_TOKEN.fullmatch(value)) and not _DATE.search(value) and not _COMPACT_DATE.search(value)


def _kept_json(key: str, value: str) -> bool:
    """Whether the string ``value`` of ``key`` is structure (a code, a type, a non-Patient reference)."""
    if not _token(value):
        return False
    if key in JSON_KEYS:
        return True
    if key == "type":  # Bundle.type, Identifier.type's codes are caught by system/code
        return bool(re.fullmatch(r"[a-z-]{1,32}", value))
    if key == "reference":
        return "Patient/" not in value and "Patient?" not in value
    return False
