"""A refused message or document made fit for an operator's screen: names, addresses and birth dates blanked,
ID numbers, phones and other long digit runs masked (``rhip.security.masking``).

Names cannot be found in free text, so each format is masked by its structure: HL7 v2 by segment and field
(PID-5 name, PID-6 mother's name, PID-7 birth date, PID-9 alias, PID-11 address, PID-13/14 phones, NK1 and
GT1/IN1 people), XML (v3, CDA) by element (``name``, ``addr``, ``birthTime``, ``telecom``), FHIR JSON by key.
What cannot be read as any of them is shown with only its digits masked and every CJK run blanked.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from rhip.exchange.hl7v2.charset import readable
from rhip.security.masking import mask_text

HIDDEN = "***"
# segment -> 1-based field numbers holding people's names, birth dates, addresses or phones
V2_FIELDS: dict[str, frozenset[int]] = {
    "PID": frozenset({5, 6, 7, 9, 11, 13, 14}),
    "PD1": frozenset({4}),
    "NK1": frozenset({2, 4, 5, 6, 30, 31, 32}),
    "GT1": frozenset({3, 5, 6, 7, 8}),
    "IN1": frozenset({16, 18, 19}),
    "IN2": frozenset({7}),
    "MRG": frozenset({7}),
}
_XML_ELEMENTS = re.compile(
    r"(<(?P<tag>(?:\w+:)?(?:name|addr|given|family|streetAddressLine))\b[^>]*>)(.*?)(</(?P=tag)>)",
    re.DOTALL,
)
_XML_ATTRS = re.compile(r"(<(?:\w+:)?(?:birthTime|telecom)\b[^>]*?\b(?:value)=\")[^\"]*(\")")
_FHIR_KEYS = frozenset({"name", "address", "telecom", "birthDate", "text", "div", "data", "given", "family"})
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def masked_content(raw: bytes, channel: str) -> str:
    """``raw`` as text with the personal data in it hidden or masked."""
    if channel == "mllp" or raw.lstrip()[:4] in (b"MSH|", b"FHS|", b"BHS|"):
        return mask_text(_mask_v2(readable(raw).replace("\r\n", "\r").replace("\n", "\r")))
    text = raw.decode("utf-8", "replace")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            return mask_text(orjson.dumps(_mask_json(data), option=orjson.OPT_INDENT_2).decode())
    if stripped.startswith("<"):
        text = _XML_ELEMENTS.sub(lambda m: f"{m.group(1)}{HIDDEN}{m.group(4)}", text)
        text = _XML_ATTRS.sub(lambda m: f"{m.group(1)}{HIDDEN}{m.group(2)}", text)
        return mask_text(text)
    return mask_text(_CJK.sub(HIDDEN, text))


def _mask_v2(text: str) -> str:
    """Each segment on its own line, the fields of ``V2_FIELDS`` blanked (separators kept)."""
    lines = []
    for segment in text.split("\r"):
        if not segment.strip():
            continue
        name = segment[:3]
        hidden = V2_FIELDS.get(name)
        if hidden is None or len(segment) < 4:
            lines.append(segment)
            continue
        sep = segment[3]
        fields = segment.split(sep)
        for i in range(1, len(fields)):
            if i in hidden and fields[i]:
                fields[i] = HIDDEN
        lines.append(sep.join(fields))
    return "\n".join(lines)


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (HIDDEN if k in _FHIR_KEYS and v else _mask_json(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value
