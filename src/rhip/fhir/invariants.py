"""A curated registry of FHIR R4 invariants (constraints) checked on every write, keyed by constraint key.

Each entry is a check ``(node, resource, root) -> bool`` (see :mod:`rhip.fhir.invariant_checks`) whose
docstring names the key and quotes the specification's human text, which the validator uses as the
diagnostic. Checks that only test the presence (or sign) of elements are generated from a table here.

Checked: datatypes ext-1, ref-1, per-1, qty-3, cpt-2, att-1, rng-2, rat-1, age-1, drt-1, cnt-3, dis-1,
tim-1, tim-2, tim-4 to tim-10; dom-3 (any ``#id`` string in the resource counts as a reference);
resources pat-1, obs-3, obs-6, obs-7, con-1, con-2, con-4, con-5, ait-1, ait-2, imm-1, mdd-1, bdl-1 to
bdl-5, bdl-7 to bdl-12, cmp-1, cmp-2, cpl-3, app-1 to app-4, org-1 to org-3, prr-1, ppc-1, sev-1, qrs-1.
The validator's walker itself enforces ele-1 (no empty elements), dom-2, dom-4 and dom-5 (contained
resources) and screens narratives for txt-1 (scripts, forms, frames, event handlers).

Not checked: invariants that need terminology or ``resolve()`` (e.g. reference target types), obs-7
beyond system and code equality, txt-2 and the rest of txt-1 (they need an XHTML parser), warnings
(con-3, dom-6, que-0), the Questionnaire item rules (que-*), ppc-2 to ppc-5 (their R4 expressions test a
placeholder system and can never fail), and the invariants of conformance and knowledge resources.
"""

from __future__ import annotations

from rhip.fhir.invariant_checks import CHECKS, Invariant, has_element, number

INVARIANTS: dict[str, Invariant] = {}
_BY_TYPE: dict[str, list[str]] = {}


def invariants_for(type_name: str) -> tuple[tuple[str, Invariant], ...]:
    """The (key, check) pairs that apply to objects of ``type_name``."""
    return tuple((key, INVARIANTS[key]) for key in _BY_TYPE.get(type_name, ()))


def describe(key: str) -> str:
    """The specification's human text of an invariant (from its check's docstring)."""
    doc = (INVARIANTS[key].__doc__ or "").strip()
    return doc.split(": ", 1)[1] if ": " in doc else doc


def _register(key: str, types: tuple[str, ...], check: Invariant) -> None:
    INVARIANTS[key] = check
    for name in types:
        _BY_TYPE.setdefault(name, []).append(key)


# Invariants that only test presence or sign: key, kind, types, elements, the specification's text.
_SIMPLE_RULES = (
    (
        "qty-3",
        "requires",
        "Quantity Age Count Distance Duration",
        "code system",
        "If a code for the unit is present, the system SHALL also be present.",
    ),
    ("cpt-2", "requires", "ContactPoint", "value system", "A system is required if a value is provided."),
    (
        "att-1",
        "requires",
        "Attachment",
        "data contentType",
        "If the Attachment has data, it SHALL have a contentType.",
    ),
    (
        "tim-1",
        "requires",
        "Timing.repeat",
        "duration durationUnit",
        "if there's a duration, there needs to be duration units.",
    ),
    (
        "tim-2",
        "requires",
        "Timing.repeat",
        "period periodUnit",
        "if there's a period, there needs to be period units.",
    ),
    ("tim-4", "non-negative", "Timing.repeat", "duration", "duration SHALL be a non-negative value."),
    ("tim-5", "non-negative", "Timing.repeat", "period", "period SHALL be a non-negative value."),
    (
        "tim-6",
        "requires",
        "Timing.repeat",
        "periodMax period",
        "If there's a periodMax, there must be a period.",
    ),
    (
        "tim-7",
        "requires",
        "Timing.repeat",
        "durationMax duration",
        "If there's a durationMax, there must be a duration.",
    ),
    ("tim-8", "requires", "Timing.repeat", "countMax count", "If there's a countMax, there must be a count."),
    (
        "tim-10",
        "excludes",
        "Timing.repeat",
        "timeOfDay when",
        "If there's a timeOfDay, there cannot be a when, or vice versa.",
    ),
    (
        "pat-1",
        "one-of",
        "Patient.contact",
        "name telecom address organization",
        "SHALL at least contain a contact's details or a reference to an organization.",
    ),
    (
        "obs-3",
        "one-of",
        "Observation.referenceRange",
        "low high text",
        "Must have at least a low or a high or text.",
    ),
    ("con-1", "one-of", "Condition.stage", "summary assessment", "Stage SHALL have summary or assessment."),
    ("con-2", "one-of", "Condition.evidence", "code detail", "evidence SHALL have code or details."),
    (
        "imm-1",
        "one-of",
        "Immunization.education",
        "documentType reference",
        "One of documentType or reference SHALL be present.",
    ),
    (
        "bdl-5",
        "one-of",
        "Bundle.entry",
        "resource request response",
        "must be a resource unless there's a request or response.",
    ),
    (
        "cmp-1",
        "one-of",
        "Composition.section",
        "text entry section",
        "A section must contain at least one of text, entries, or sub-sections.",
    ),
    (
        "cmp-2",
        "excludes",
        "Composition.section",
        "emptyReason entry",
        "A section can only have an emptyReason if it is empty.",
    ),
    (
        "cpl-3",
        "excludes",
        "CarePlan.activity",
        "detail reference",
        "Provide a reference or detail, not both.",
    ),
    (
        "app-1",
        "one-of",
        "Appointment.participant",
        "type actor",
        "Either the type or actor on the participant SHALL be specified.",
    ),
    (
        "app-2",
        "both-or-neither",
        "Appointment",
        "start end",
        "Either start and end are specified, or neither.",
    ),
    (
        "org-1",
        "one-of",
        "Organization",
        "identifier name",
        "The organization SHALL at least have a name or an identifier, and possibly more than one.",
    ),
    (
        "prr-1",
        "requires",
        "ServiceRequest",
        "orderDetail code",
        "orderDetail SHALL only be present if code is present.",
    ),
    ("ppc-1", "one-of", "Consent", "policy policyRule", "Either a Policy or PolicyRule."),
    ("sev-1", "excludes", "AuditEvent.entity", "name query", "Either a name or a query (NOT both)."),
    (
        "qrs-1",
        "excludes",
        "QuestionnaireResponse.item",
        "answer item",
        "Nested item can't be beneath both item and answer.",
    ),
)


def _simple_rule(kind: str, names: tuple[str, ...]) -> Invariant:
    first, second = names[0], names[-1]
    if kind == "requires":
        return lambda node, resource, root: not has_element(node, first) or has_element(node, second)
    if kind == "excludes":
        return lambda node, resource, root: not (has_element(node, first) and has_element(node, second))
    if kind == "both-or-neither":
        return lambda node, resource, root: has_element(node, first) == has_element(node, second)
    if kind == "non-negative":
        return lambda node, resource, root: (number(node.get(first)) or 0) >= 0
    return lambda node, resource, root: any(has_element(node, name) for name in names)


def _register_all() -> None:
    for key, type_names, check in CHECKS:
        _register(key, type_names, check)
    for key, kind, types, names, text in _SIMPLE_RULES:
        rule = _simple_rule(kind, tuple(names.split()))
        rule.__doc__ = f"{key}: {text}"
        _register(key, tuple(types.split()), rule)


_register_all()
