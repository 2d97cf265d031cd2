"""The CDA narrative block (NarrativeBlock.xsd, ``StrucDoc.Text``): what a section's ``text`` may hold.

:data:`ELEMENTS` maps each narrative element to the elements it may contain and the attributes it may
carry; the structural validator checks a section's text against it and the HTML renderer renders exactly
these elements (anything else is an error there, not something to pass through).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from rhip.cda.datatypes import Report, check_attributes, child_paths, local

_COMMON = frozenset({"ID", "language", "styleCode"})
_INLINE = frozenset(
    {"content", "linkHtml", "sub", "sup", "br", "footnote", "footnoteRef", "renderMultiMedia"}
)
_BLOCK = frozenset({"paragraph", "list", "table"})
_CELL = frozenset({"align", "char", "charoff", "valign"})


@dataclass(frozen=True)
class NarrativeElement:
    """One narrative element: its children, its attributes, whether it holds text, and its child order."""

    children: frozenset[str]
    attributes: frozenset[str] = _COMMON
    text: bool = True
    order: str = ""  # a regex over "name " tokens when the schema fixes an order


ELEMENTS: dict[str, NarrativeElement] = {
    "text": NarrativeElement(_INLINE | _BLOCK, _COMMON | {"mediaType"}),
    "content": NarrativeElement(_INLINE, _COMMON | {"revised"}),
    "linkHtml": NarrativeElement(
        frozenset({"footnote", "footnoteRef"}), _COMMON | {"name", "href", "rel", "rev", "title"}
    ),
    "sub": NarrativeElement(frozenset()),
    "sup": NarrativeElement(frozenset()),
    "br": NarrativeElement(frozenset(), frozenset(), text=False),
    "footnote": NarrativeElement(_INLINE - {"footnote", "footnoteRef"} | _BLOCK),
    "footnoteRef": NarrativeElement(frozenset(), _COMMON | {"IDREF"}, text=False),
    "renderMultiMedia": NarrativeElement(frozenset({"caption"}), _COMMON | {"referencedObject"}, text=False),
    "paragraph": NarrativeElement(_INLINE | {"caption"}, order=r"(caption )?(?!.*caption ).*"),
    "list": NarrativeElement(
        frozenset({"caption", "item"}), _COMMON | {"listType"}, text=False, order=r"(caption )?(item )+"
    ),
    "item": NarrativeElement(_INLINE | _BLOCK | {"caption"}, order=r"(caption )?(?!.*caption ).*"),
    "caption": NarrativeElement(frozenset({"linkHtml", "sub", "sup", "footnote", "footnoteRef"})),
    "table": NarrativeElement(
        frozenset({"caption", "col", "colgroup", "thead", "tfoot", "tbody"}),
        _COMMON | {"summary", "width", "border", "frame", "rules", "cellspacing", "cellpadding"},
        text=False,
        order=r"(caption )?((col )*|(colgroup )*)(thead )?(tfoot )?(tbody )+",
    ),
    "colgroup": NarrativeElement(frozenset({"col"}), _COMMON | _CELL | {"span", "width"}, text=False),
    "col": NarrativeElement(frozenset(), _COMMON | _CELL | {"span", "width"}, text=False),
    "thead": NarrativeElement(frozenset({"tr"}), _COMMON | _CELL, text=False, order=r"(tr )+"),
    "tfoot": NarrativeElement(frozenset({"tr"}), _COMMON | _CELL, text=False, order=r"(tr )+"),
    "tbody": NarrativeElement(frozenset({"tr"}), _COMMON | _CELL, text=False, order=r"(tr )+"),
    "tr": NarrativeElement(frozenset({"th", "td"}), _COMMON | _CELL, text=False, order=r"((th|td) )+"),
    "th": NarrativeElement(
        _INLINE, _COMMON | _CELL | {"abbr", "axis", "headers", "scope", "rowspan", "colspan"}
    ),
    "td": NarrativeElement(
        _INLINE | {"paragraph", "list"},
        _COMMON | _CELL | {"abbr", "axis", "headers", "scope", "rowspan", "colspan"},
    ),
}
_VOCABULARY = {
    "listType": re.compile("ordered|unordered"),
    "revised": re.compile("insert|delete"),
    "scope": re.compile("row|col|rowgroup|colgroup"),
    "rowspan": re.compile("[0-9]+"),
    "colspan": re.compile("[0-9]+"),
    "span": re.compile("[0-9]+"),
}


def check_text(el: etree._Element, path: str, report: Report) -> None:
    """Check a section's ``text`` (StrucDoc.Text) and everything inside it."""
    _check(el, "text", path, report)


def _check(el: etree._Element, name: str, path: str, report: Report) -> None:
    spec = ELEMENTS[name]
    check_attributes(el, path, report, spec.attributes)
    for attr, pattern in _VOCABULARY.items():
        value = el.get(attr)
        if value is not None and attr in spec.attributes and not pattern.fullmatch(value):
            report(path, f"@{attr}={value!r} is not allowed")
    if name == "footnoteRef" and not el.get("IDREF"):
        report(path, "footnoteRef needs @IDREF")
    if name == "renderMultiMedia" and not el.get("referencedObject"):
        report(path, "renderMultiMedia needs @referencedObject")
    if not spec.text and ((el.text or "").strip() or any((c.tail or "").strip() for c in el)):
        report(path, f"<{name}> holds no character data")
    kids = child_paths(el, path)
    names = [local(c) for c, _ in kids]
    for (child, where), child_name in zip(kids, names, strict=True):
        if child_name is None or child_name not in spec.children:
            report(where, f"<{etree.QName(child).localname}> is not allowed in the narrative <{name}>")
        else:
            _check(child, child_name, where, report)
    if spec.order and all(n in spec.children for n in names if n):
        tokens = "".join(f"{n} " for n in names)
        if not re.fullmatch(spec.order, tokens):
            report(path, f"children {tokens.strip()!r} of <{name}> are out of order")
