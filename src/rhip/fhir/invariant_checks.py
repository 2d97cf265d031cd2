"""The check functions behind :mod:`rhip.fhir.invariants`, one per FHIR R4 constraint key.

A check is ``(node, resource, root) -> bool`` (True when the invariant holds): ``node`` is the JSON object
of the type it is registered for, ``resource`` the nearest enclosing resource (``%resource``) and
``root`` the container of a contained resource, else the resource itself (``%rootResource``). Its
docstring names the key and quotes the specification's human text. Checks assume nothing about the
structure (the validator reports that separately) and answer True when the data is too malformed to judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from rhip.fhir.search.values import DateFormatError, date_range

Node = dict[str, Any]
Invariant = Callable[[Node, Node, Node], bool]

CHECKS: list[tuple[str, tuple[str, ...], Invariant]] = []  # (key, type names, check)
_ZONE = ZoneInfo("Asia/Shanghai")
_UCUM = "http://unitsofmeasure.org"
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def check(key: str, *types: str) -> Callable[[Invariant], Invariant]:
    """Record a check under its constraint key for the given type names (``Timing.repeat``, ``Bundle``)."""

    def record(fn: Invariant) -> Invariant:
        CHECKS.append((key, types, fn))
        return fn

    return record


def has_element(node: Node, name: str) -> bool:
    """Whether an element exists; a primitive with only an id/extension (``_name``) counts."""
    return name in node or "_" + name in node


def _has_choice(node: Node, name: str) -> bool:
    """Whether any type variant of choice element ``name`` (``valueQuantity``, ``_valueString``) exists."""
    size = len(name)
    for key in node:
        bare = key[1:] if key[:1] == "_" else key
        if bare[:size] == name and bare[size : size + 1].isupper():
            return True
    return False


def _get(node: Any, name: str) -> Any:
    return node.get(name) if isinstance(node, dict) else None


def _list(node: Any, name: str) -> list[Any]:
    value = node.get(name) if isinstance(node, dict) else None
    return value if isinstance(value, list) else []


def _codings(concept: Any) -> Iterator[tuple[Any, Any]]:
    """(system, code) of each Coding of a CodeableConcept."""
    for coding in _list(concept, "coding"):
        if isinstance(coding, dict):
            yield coding.get("system"), coding.get("code")


def _coded(concept: Any, system: str, codes: tuple[str, ...]) -> bool:
    return any(s == system and c in codes for s, c in _codings(concept))


def _range(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, str):
        return None
    try:
        return date_range(value, _ZONE)
    except DateFormatError:
        return None


def _not_after(earlier: Any, later: Any) -> bool:
    """False only when ``earlier`` certainly lies after ``later`` (an end covers its whole precision)."""
    if not isinstance(earlier, str) or not isinstance(later, str):
        return True
    if len(earlier) == len(later) and earlier[19:] == later[19:] and earlier <= later:
        return True  # same precision and offset: text order is time order
    first, second = _range(earlier), _range(later)
    return first is None or second is None or first[0] <= second[1]


def number(value: Any) -> float | None:
    """A JSON number (not a boolean) as is, anything else as None."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


@check("ext-1", "Extension")
def ext_1(node: Node, resource: Node, root: Node) -> bool:
    """ext-1: Must have either extensions or value[x], not both."""
    return ("extension" in node) != _has_choice(node, "value")


@check("ref-1", "Reference")
def ref_1(node: Node, resource: Node, root: Node) -> bool:
    """ref-1: SHALL have a contained resource if a local reference is provided."""
    ref = node.get("reference")
    if not isinstance(ref, str) or not ref.startswith("#") or ref == "#":
        return True  # "#" alone points from a contained resource back to its container
    return any(isinstance(c, dict) and c.get("id") == ref[1:] for c in _list(root, "contained"))


@check("dom-3", "DomainResource")
def dom_3(node: Node, resource: Node, root: Node) -> bool:
    """dom-3: If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource or SHALL refer to the containing resource."""  # noqa: E501
    contained = [c for c in _list(node, "contained") if isinstance(c, dict) and isinstance(c.get("id"), str)]
    if not contained:
        return True  # a contained resource without an id is reported by the validator itself
    # Any "#..." string counts as a local reference: the spec looks at reference, canonical, uri and url.
    refs = _local_refs(node)
    return all("#" + c["id"] in refs or "#" in _local_refs(c) for c in contained)


def _local_refs(node: Any) -> set[str]:
    """Every string starting with '#' anywhere below ``node`` (iterative: input nesting is unbounded)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item[:1] == "#":
            found.add(item)
    return found


@check("per-1", "Period")
def per_1(node: Node, resource: Node, root: Node) -> bool:
    """per-1: If present, start SHALL have a lower value than end."""
    return _not_after(node.get("start"), node.get("end"))


@check("rng-2", "Range")
def rng_2(node: Node, resource: Node, root: Node) -> bool:
    """rng-2: If present, low SHALL have a lower value than high."""
    low, high = node.get("low"), node.get("high")
    if not isinstance(low, dict) or not isinstance(high, dict) or low.get("code") != high.get("code"):
        return True  # values in different units are not comparable without UCUM conversion
    a, b = number(low.get("value")), number(high.get("value"))
    return a is None or b is None or a <= b


@check("rat-1", "Ratio")
def rat_1(node: Node, resource: Node, root: Node) -> bool:
    """rat-1: Numerator and denominator SHALL both be present, or both are absent. If both are absent, there SHALL be some extension present."""  # noqa: E501
    numerator, denominator = "numerator" in node, "denominator" in node
    return numerator == denominator and (numerator or "extension" in node)


@check("age-1", "Age")
def age_1(node: Node, resource: Node, root: Node) -> bool:
    """age-1: There SHALL be a code if there is a value and it SHALL be an expression of time. If system is present, it SHALL be UCUM. If value is present, it SHALL be positive."""  # noqa: E501
    value = number(node.get("value"))
    return (
        ("code" in node or "value" not in node)
        and node.get("system", _UCUM) == _UCUM
        and (value is None or value > 0)
    )


@check("drt-1", "Duration")
def drt_1(node: Node, resource: Node, root: Node) -> bool:
    """drt-1: There SHALL be a code if there is a value and it SHALL be an expression of time. If system is present, it SHALL be UCUM."""
    return "code" not in node or (node.get("system") == _UCUM and has_element(node, "value"))


@check("cnt-3", "Count")
def cnt_3(node: Node, resource: Node, root: Node) -> bool:
    """cnt-3: There SHALL be a code with a value of "1" if there is a value. If system is present, it SHALL be UCUM. If present, the value SHALL be a whole number."""  # noqa: E501
    value = node.get("value")
    return (
        ("code" in node or "value" not in node)
        and node.get("system", _UCUM) == _UCUM
        and node.get("code", "1") == "1"
        and (not isinstance(value, float) or value.is_integer())
    )


@check("dis-1", "Distance")
def dis_1(node: Node, resource: Node, root: Node) -> bool:
    """dis-1: There SHALL be a code if there is a value and it SHALL be an expression of length. If system is present, it SHALL be UCUM."""
    return ("code" in node or "value" not in node) and node.get("system", _UCUM) == _UCUM


@check("tim-9", "Timing.repeat")
def tim_9(node: Node, resource: Node, root: Node) -> bool:
    """tim-9: If there's an offset, there must be a when (and not C, CM, CD, CV)."""
    if not has_element(node, "offset"):
        return True
    when = _list(node, "when")
    return bool(when) and not any(w in ("C", "CM", "CD", "CV") for w in when)


@check("obs-6", "Observation")
def obs_6(node: Node, resource: Node, root: Node) -> bool:
    """obs-6: dataAbsentReason SHALL only be present if Observation.value[x] is not present."""
    return "dataAbsentReason" not in node or not _has_choice(node, "value")


@check("obs-7", "Observation")
def obs_7(node: Node, resource: Node, root: Node) -> bool:
    """obs-7: If Observation.code is the same as an Observation.component.code then the value element associated with the code SHALL NOT be present."""  # noqa: E501
    if not _has_choice(node, "value") or "component" not in node:
        return True
    # Codings are "the same" when system and code agree; display and version do not change the concept.
    codes = {pair for pair in _codings(node.get("code")) if pair[1] is not None}
    components = [c.get("code") for c in _list(node, "component") if isinstance(c, dict)]
    return not any(pair in codes for concept in components for pair in _codings(concept))


@check("con-4", "Condition")
def con_4(node: Node, resource: Node, root: Node) -> bool:
    """con-4: If condition is abated, then clinicalStatus must be either inactive, resolved, or remission."""
    return not _has_choice(node, "abatement") or _coded(
        node.get("clinicalStatus"), _CONDITION_CLINICAL, ("resolved", "remission", "inactive")
    )


@check("con-5", "Condition")
def con_5(node: Node, resource: Node, root: Node) -> bool:
    """con-5: Condition.clinicalStatus SHALL NOT be present if verification Status is entered-in-error."""
    return "clinicalStatus" not in node or not _coded(
        node.get("verificationStatus"), _CONDITION_VERIFICATION, ("entered-in-error",)
    )


@check("ait-1", "AllergyIntolerance")
def ait_1(node: Node, resource: Node, root: Node) -> bool:
    """ait-1: AllergyIntolerance.clinicalStatus SHALL be present if verificationStatus is not entered-in-error."""
    return "clinicalStatus" in node or _coded(
        node.get("verificationStatus"), _ALLERGY_VERIFICATION, ("entered-in-error",)
    )


@check("ait-2", "AllergyIntolerance")
def ait_2(node: Node, resource: Node, root: Node) -> bool:
    """ait-2: AllergyIntolerance.clinicalStatus SHALL NOT be present if verification Status is entered-in-error."""
    return "clinicalStatus" not in node or not _coded(
        node.get("verificationStatus"), _ALLERGY_VERIFICATION, ("entered-in-error",)
    )


@check("mdd-1", "MedicationDispense")
def mdd_1(node: Node, resource: Node, root: Node) -> bool:
    """mdd-1: whenHandedOver cannot be before whenPrepared."""
    return _not_after(node.get("whenPrepared"), node.get("whenHandedOver"))


@check("bdl-1", "Bundle")
def bdl_1(node: Node, resource: Node, root: Node) -> bool:
    """bdl-1: total only when a search or history."""
    return not has_element(node, "total") or node.get("type") in ("searchset", "history")


@check("bdl-2", "Bundle")
def bdl_2(node: Node, resource: Node, root: Node) -> bool:
    """bdl-2: entry.search only when a search."""
    return node.get("type") == "searchset" or not any(
        isinstance(e, dict) and "search" in e for e in _list(node, "entry")
    )


@check("bdl-3", "Bundle.entry")
def bdl_3(node: Node, resource: Node, root: Node) -> bool:
    """bdl-3: entry.request mandatory for batch/transaction/history, otherwise prohibited."""
    return ("request" in node) == (resource.get("type") in ("batch", "transaction", "history"))


@check("bdl-4", "Bundle.entry")
def bdl_4(node: Node, resource: Node, root: Node) -> bool:
    """bdl-4: entry.response mandatory for batch-response/transaction-response/history, otherwise prohibited."""
    kinds = ("batch-response", "transaction-response", "history")
    return ("response" in node) == (resource.get("type") in kinds)


@check("bdl-7", "Bundle")
def bdl_7(node: Node, resource: Node, root: Node) -> bool:
    """bdl-7: FullUrl must be unique in a bundle, or else entries with the same fullUrl must have different meta.versionId (except in history bundles)."""  # noqa: E501
    if node.get("type") == "history":
        return True
    seen: set[tuple[Any, Any]] = set()
    for entry in _list(node, "entry"):
        url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if not isinstance(url, str):
            continue
        meta = _get(_get(entry, "resource"), "meta")
        key = (url, _get(meta, "versionId"))
        if key in seen:
            return False
        seen.add(key)
    return True


@check("bdl-8", "Bundle.entry")
def bdl_8(node: Node, resource: Node, root: Node) -> bool:
    """bdl-8: fullUrl cannot be a version specific reference."""
    url = node.get("fullUrl")
    return not isinstance(url, str) or "/_history/" not in url


@check("bdl-9", "Bundle")
def bdl_9(node: Node, resource: Node, root: Node) -> bool:
    """bdl-9: A document must have an identifier with a system and a value."""
    ident = node.get("identifier")
    return node.get("type") != "document" or (
        isinstance(ident, dict) and has_element(ident, "system") and has_element(ident, "value")
    )


@check("bdl-10", "Bundle")
def bdl_10(node: Node, resource: Node, root: Node) -> bool:
    """bdl-10: A document must have a date."""
    return node.get("type") != "document" or "timestamp" in node


def _first_resource_is(node: Node, resource_type: str) -> bool:
    entries = _list(node, "entry")
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    return isinstance(first, dict) and first.get("resourceType") == resource_type


@check("bdl-11", "Bundle")
def bdl_11(node: Node, resource: Node, root: Node) -> bool:
    """bdl-11: A document must have a Composition as the first resource."""
    return node.get("type") != "document" or _first_resource_is(node, "Composition")


@check("bdl-12", "Bundle")
def bdl_12(node: Node, resource: Node, root: Node) -> bool:
    """bdl-12: A message must have a MessageHeader as the first resource."""
    return node.get("type") != "message" or _first_resource_is(node, "MessageHeader")


@check("app-3", "Appointment")
def app_3(node: Node, resource: Node, root: Node) -> bool:
    """app-3: Only proposed or cancelled appointments can be missing start/end dates."""
    kinds = ("proposed", "cancelled", "waitlist")
    return (has_element(node, "start") and has_element(node, "end")) or node.get("status") in kinds


@check("app-4", "Appointment")
def app_4(node: Node, resource: Node, root: Node) -> bool:
    """app-4: Cancelation reason is only used for appointments that have been cancelled, or no-show."""
    return "cancelationReason" not in node or node.get("status") in ("no-show", "cancelled")


@check("org-2", "Organization")
def org_2(node: Node, resource: Node, root: Node) -> bool:
    """org-2: An address of an organization can never be of use 'home'."""
    return not any(isinstance(a, dict) and a.get("use") == "home" for a in _list(node, "address"))


@check("org-3", "Organization")
def org_3(node: Node, resource: Node, root: Node) -> bool:
    """org-3: The telecom of an organization can never be of use 'home'."""
    return not any(isinstance(t, dict) and t.get("use") == "home" for t in _list(node, "telecom"))
