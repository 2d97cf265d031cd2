"""A structural validator for CDA R2 documents: ``validate(root)`` lists what breaks the CDA R2 schema.

**This is not the HL7 XML schema.** No copy of CDA.xsd / POCD_MT000040.xsd could be obtained from a
package registry the project may use (rhip/cda/data/README.md), so the content model of the classes a
clinical document uses was written out by hand in ``data/POCD_MT000040-subset.txt`` from the structure
of the normative schema. The validator checks what that schema checks:

- element order and cardinality of every class (the file's content models), choices included;
- the attributes each class allows, the required ones, and the values of the structural vocabularies
  (classCode, moodCode, typeCode …) where the schema restricts them;
- the data types of the leaves (rhip/cda/datatypes.py): uid roots and code systems, HL7 timestamps,
  numbers, units without spaces, codes without spaces, the xsi:type of every ``value`` (ANY);
- the narrative block of every section (rhip/cda/narrative.py);
- that nothing outside the ``urn:hl7-org:v3`` namespace appears.

Anything outside the subset is reported, as the schema would report it: for example the ``township``,
``age`` and ``patientType`` elements some WS/T sample documents carry (national extensions the core
schema does not define). What it does not do: identity constraints, the HL7 data-type invariants beyond
those above, and vocabulary bindings of coded elements (``code``) that voc.xsd leaves open anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lxml import etree

from rhip.cda import datatypes
from rhip.cda.datatypes import XSI, XSI_TYPE, Report, child_paths, local, no_text
from rhip.cda.narrative import check_text

MODEL_FILE = "POCD_MT000040-subset.txt"
_INFRASTRUCTURE = "realmCode:CS* typeId:TypeId? templateId:II* "
_ROOT_ATTRIBUTES = frozenset({f"{{{XSI}}}schemaLocation"})


@dataclass(frozen=True)
class Attribute:
    """An attribute rule: the name, whether it is required, and the values allowed (empty: any)."""

    name: str
    required: bool
    allowed: frozenset[str]


@dataclass(frozen=True)
class ClassModel:
    """The content model of one POCD_MT000040 class."""

    name: str
    text: str  # the children as the model file writes them, for messages
    pattern: re.Pattern[str]  # over the children's names, each followed by a space
    child_types: dict[str, str]  # element name -> class or data type
    attributes: tuple[Attribute, ...]


def _parse_model(name: str, children: str, attributes: str) -> ClassModel:
    if not children.startswith("realmCode"):
        children = _INFRASTRUCTURE + children
    regex: list[str] = []
    types: dict[str, str] = {}
    for token in children.split():
        quant = token[-1] if token[-1] in "?*+" else ""
        names = []
        for alternative in token.rstrip("?*+").strip("()").split("|"):
            element, _, kind = alternative.partition(":")
            types[element] = kind
            names.append(element)
        regex.append(f"(?:(?:{'|'.join(names)}) ){quant}")
    rules = []
    for rule in attributes.split():
        attr, _, allowed = rule.removeprefix("?").partition("=")
        rules.append(
            Attribute(
                attr, not rule.startswith("?"), frozenset(allowed.split("|")) if allowed else frozenset()
            )
        )
    return ClassModel(name, children, re.compile("".join(regex)), types, tuple(rules))


@cache
def models() -> dict[str, ClassModel]:
    """The content models of the data file, by class name (read once)."""
    text = resources.files("rhip.cda").joinpath("data", MODEL_FILE).read_text("utf-8")
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, children, attributes = (part.strip() for part in line.split(";"))
            found[name] = _parse_model(name, children, attributes)
    return found


def validate(root: etree._Element) -> list[str]:
    """The problems that make ``root`` (a parsed ClinicalDocument) break the CDA R2 model; empty when valid.

    Each problem reads ``/ClinicalDocument/…/element: what is wrong``.
    """
    problems: list[str] = []

    def report(path: str, message: str) -> None:
        problems.append(f"{path}: {message}")

    name = local(root)
    if name != "ClinicalDocument":
        report(
            f"/{etree.QName(root).localname}", "the root element must be ClinicalDocument in urn:hl7-org:v3"
        )
        return problems
    _check_class(root, models()["ClinicalDocument"], "/ClinicalDocument", report, root=True)
    return problems


def _check_class(
    el: etree._Element, model: ClassModel, path: str, report: Report, root: bool = False
) -> None:
    _check_attributes(el, model, path, report, root)
    no_text(el, path, report)
    known: list[str] = []
    for child, where in child_paths(el, path):
        name = local(child)
        if name is None:
            report(where, f"element {child.tag} is outside the CDA namespace")
            continue
        kind = model.child_types.get(name)
        if kind is None:
            report(where, f"<{name}> is not part of {model.name} in the CDA R2 model")
            continue
        known.append(name)
        _check_child(child, kind, where, report)
    names = "".join(f"{n} " for n in known)
    if not model.pattern.fullmatch(names):
        report(path, f"children {names.strip()!r} break the content model of {model.name}: {model.text}")


def _check_child(el: etree._Element, kind: str, path: str, report: Report) -> None:
    child_model = models().get(kind)
    if child_model is not None:
        _check_class(el, child_model, path, report)
    elif kind == "StrucDocText":
        check_text(el, path, report)
    else:
        datatypes.check(kind, el, path, report)


def _check_attributes(el: etree._Element, model: ClassModel, path: str, report: Report, root: bool) -> None:
    declared = {a.name for a in model.attributes}
    for attr in el.attrib:
        if attr == XSI_TYPE or (root and attr in _ROOT_ATTRIBUTES):
            continue
        if attr.startswith("{"):
            report(path, f"attribute {attr} is not part of the CDA schema")
        elif attr not in declared and attr != "nullFlavor":
            report(path, f"attribute @{attr} is not allowed on {model.name}")
    flavor = el.get("nullFlavor")
    if flavor is not None and flavor not in datatypes.NULL_FLAVORS:
        report(path, f"@nullFlavor={flavor!r} is not a NullFlavor code")
    for rule in model.attributes:
        value = el.get(rule.name)
        if value is None:
            if rule.required:
                report(path, f"@{rule.name} is required on {model.name}")
        elif rule.allowed and value not in rule.allowed:
            allowed = ", ".join(sorted(rule.allowed))
            report(path, f"@{rule.name}={value!r} is not allowed on {model.name} (allowed: {allowed})")
        elif not datatypes.TOKEN.fullmatch(value):
            report(path, f"@{rule.name}={value!r} is not a code (no spaces)")
