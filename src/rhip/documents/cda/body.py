"""The structured body read entry by entry: every kind of entry the shared readers understand.

Each entry is recognised once, by its statement and data elements, whatever section it is in, so one
pass serves every document type; the family modules add what is particular to theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rhip.documents.cda.codes import vital_loincs, vital_signs
from rhip.documents.cda.context import Extraction, Resource, Section
from rhip.documents.cda.diagnoses import DIAGNOSIS_CODE, Diagnosis, condition, find
from rhip.documents.cda.immunizations import immunization
from rhip.documents.cda.medications import is_drug, medication
from rhip.documents.cda.observations import ABO, LAB_ITEM, RH, blood_type, finding, result, vital_sign, vitals
from rhip.documents.cda.procedures import ALLERGY_HISTORY, allergy, procedure
from rhip.documents.cda.statements import code_of, components, element_id, statement
from rhip.documents.cda.values import coding
from rhip.documents.cda.xmlpath import Element, child, local

# Sections whose diagnoses are standing problems, not the diagnoses of this visit.
PROBLEM_SECTIONS = frozenset(("11450-4", "11348-0"))  # PROBLEM LIST, HISTORY OF PAST ILLNESS


@dataclass
class Body:
    """What the shared readers found, by kind (the resources are already added to the extraction)."""

    conditions: list[tuple[Resource, Diagnosis, Section]] = field(default_factory=list)
    vitals: list[Resource] = field(default_factory=list)
    results: list[Resource] = field(default_factory=list)
    medications: list[Resource] = field(default_factory=list)
    immunizations: list[Resource] = field(default_factory=list)
    procedures: list[Resource] = field(default_factory=list)
    other: list[Resource] = field(default_factory=list)


def read_body(x: Extraction, *, issued: str | None = None, result_kind: str = "laboratory") -> Body:
    """Read every entry of every section with the shared readers."""
    body = Body()
    header = x.doc.header
    recorded = header.author.time or header.effective_time
    for section in x.sections():
        signs: list[tuple[Element, Element, tuple[str, str]]] = []
        for entry in section.entries():
            stmt = statement(entry)
            if stmt is None:
                continue
            kind = local(stmt)
            if kind == "organizer":
                _organizer(x, body, section, entry, stmt, issued, result_kind)
            elif kind == "observation":
                element = element_id(stmt)
                sign = vital_sign(stmt)
                if element == DIAGNOSIS_CODE:
                    _diagnosis(x, body, section, entry)
                elif sign is not None:
                    signs.append((entry, stmt, sign))
                elif element in (ABO, RH):
                    _keep(x, body.other, blood_type(x, entry, stmt))
                elif element == ALLERGY_HISTORY:
                    _keep(x, body.other, allergy(x, entry, stmt, recorded))
            elif kind == "substanceAdministration":
                material = child(stmt, "consumable", "manufacturedProduct", "manufacturedMaterial")
                if material is not None:
                    _keep(x, body.immunizations, immunization(x, entry, stmt, material, header.author.time))
                elif is_drug(stmt):
                    _keep(x, body.medications, medication(x, entry, stmt))
            elif kind == "procedure":
                _keep(x, body.procedures, procedure(x, entry, stmt))
        for resource in vitals(x, signs):
            _keep(x, body.vitals, resource)
    return body


def _keep(x: Extraction, kept: list[Resource], resource: Resource | None) -> None:
    if resource is not None:
        kept.append(x.add(resource))


def _diagnosis(x: Extraction, body: Body, section: Section, entry: Element) -> None:
    """A Condition of a diagnosis entry (an 入院诊断 goes to the Encounter instead)."""
    dx = find(entry)
    if dx is None or dx.is_admission:
        return
    if coding(child(dx.code_obs, "value")) is None and dx.name_obs is None:
        return
    resource = x.add(condition(x, dx, problem=section.code in PROBLEM_SECTIONS))
    body.conditions.append((resource, dx, section))


def _organizer(
    x: Extraction,
    body: Body,
    section: Section,
    entry: Element,
    organizer: Element,
    issued: str | None,
    kind: str,
) -> None:
    """An organizer: a diagnosis (name and code), a result (item and value) or a battery of blood types."""
    parts = components(organizer)
    elements = {element_id(p) for p in parts}
    if DIAGNOSIS_CODE in elements:
        _diagnosis(x, body, section, entry)
    elif LAB_ITEM in elements:
        _keep(x, body.results, result(x, entry, parts, issued=issued, kind=kind))
    else:
        for part in parts:
            if local(part) == "observation" and element_id(part) in (ABO, RH):
                _keep(x, body.other, blood_type(x, part, part))


# Data elements the shared readers (or a family's own code) turn into resources, or that only repeat what
# the header or another entry says: never a finding of their own.
HANDLED_ELEMENTS = frozenset(
    (
        "DE05.01.024.00", "DE05.01.025.00", "DE05.10.113.00",  # diagnoses, outcome
        "DE04.30.015.00", "DE04.30.016.00", "DE04.30.017.00", "DE04.30.018.00", "DE04.30.019.00",  # results
        "DE04.50.001.00", "DE04.50.010.00", "DE02.10.022.00",  # blood types, allergies
        "DE06.00.135.00", "DE06.00.094.00",  # total dose, procedure name
        "DE08.10.013.00", "DE06.00.177.00",  # institution names, referral reason
        "DE04.50.128.00", "DE04.50.130.00",  # result summaries (the results are entries of their own)
    )
)  # fmt: skip


def is_handled(obs: Element) -> bool:
    """Whether another reader already makes something of this observation."""
    element = element_id(obs)
    if element in HANDLED_ELEMENTS or element in vital_signs():
        return True
    code, system, _ = code_of(obs)
    return system == "2.16.840.1.113883.6.1" and code in vital_loincs()


def findings(
    x: Extraction, sections: list[Section], *, kind: str | None = None, when: str | None = None
) -> list[Resource]:
    """Observations of the entries no reader handles (a coded or named observation with a value)."""
    out: list[Resource] = []
    for section in sections:
        for entry in section.entries():
            obs = statement(entry)
            if obs is None or local(obs) != "observation" or is_handled(obs):
                continue
            _keep(x, out, finding(x, entry, obs, kind=kind, when=when))
    return out
