"""Write-time validation of FHIR R4 JSON resources: structure, cardinality, primitives, bindings, invariants.

The walker checks, for the resource and every nested object: that each property is an element of the
object's type (or ``_name`` for a primitive ``name``), JSON arrays exactly where the element repeats,
required elements, a single variant per choice element, primitive values (JSON type, the
specification's regex read with XML Schema semantics, calendar dates, 32-bit integers, non-empty
strings up to 1 MB, a cheap XHTML screen for txt-1), no empty objects or arrays (ele-1), nested
resources as their own type, contained resources (an id, dom-2, dom-4, dom-5), required bindings whose
value set can be enumerated, the invariants of :mod:`rhip.fhir.invariants` (dom-3 among them) and, given a
:class:`CodingCheck` (the terminology service), that every Coding of a code system it holds completely
(GB/T 2261.1 sex, GB/T 2260 divisions …) names one of its codes.

This runs on every write, so everything that depends only on the type (element lookups, checkers,
value-set code sets, invariants) is precomputed once per type into a :class:`_Plan`. Diagnostics never
echo the value of free-text primitives (string, markdown, identifiers, URIs): those may carry names or
ID numbers; dates, numbers and code-like codes are shown.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Protocol

from rhip.core.errors import Issue
from rhip.fhir.definitions import PRIMITIVE_TYPES, StructureTable, structure
from rhip.fhir.invariant_checks import Invariant
from rhip.fhir.invariants import describe, invariants_for
from rhip.fhir.primitive_checks import ECHOED_TYPES, Checker, Problem, checkers, json_type
from rhip.fhir.valuesets import Expansion, required_valuesets

RHIP_CODE = "RHIP-FHIR-0004"
_FREE_TEXT = re.compile(r"\s|\d{6}")  # whitespace or a run of digits (phone, ID number)
MAX_DEPTH = 96  # nested objects; keeps hostile input far from the interpreter's recursion limit
_PRIMITIVE, _COMPLEX, _RESOURCE, _ELEMENT, _SKIP = range(5)


Scope = tuple[Any, Any]  # (%resource, %rootResource): the nearest resource and its container if contained


class BindingSource(Protocol):
    """The value sets of required bindings, enumerated (RequiredValueSets, or the terminology service)."""

    def expansion(self, url: str) -> Expansion | None:
        """The value set's codes, or None when it cannot be enumerated."""


class CodingCheck(Protocol):
    """Whether a Coding names a code of its code system, for the code systems the platform holds."""

    def coding_problem(self, system: str, code: str) -> str | None:
        """Why ``code`` is not one of ``system`` (None: it is, or the system is not checked)."""


class _Stop(Exception):
    """Raised internally once ``max_issues`` issues have been collected."""


class _Slot:
    """What one JSON property of one type means, with everything the walker needs precomputed."""

    __slots__ = (
        "check",
        "choice",
        "codes",
        "echo",
        "expansion",
        "key",
        "kind",
        "many",
        "plan",
        "prim",
        "type",
        "valueset",
    )

    def __init__(self, key: str, type_name: str, kind: int, many: bool, choice: str | None) -> None:
        self.key = key  # the JSON property name (valueQuantity, _birthDate)
        self.type = type_name
        self.kind = kind
        self.many = many
        self.choice = choice  # choice element name when this is one of its variants
        self.prim = key  # for _name slots: the primitive property it extends
        self.check: Checker = _accept
        self.echo = type_name in ECHOED_TYPES
        self.valueset: str | None = None  # required binding that can be checked
        self.codes: frozenset[str] | None = None  # ... of a code
        self.expansion: Expansion | None = None  # ... of a Coding or CodeableConcept
        self.plan: _Plan | None = None  # resolved on first use: types refer to themselves


class _Plan:
    """A type's slots by JSON property, its required elements and its invariants."""

    __slots__ = ("invariants", "name", "required", "slots")

    def __init__(self, name: str) -> None:
        self.name = name
        self.slots: dict[str, _Slot] = {}
        self.required: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.invariants: tuple[tuple[str, Invariant], ...] = invariants_for(name)


class Validator:
    """Validates FHIR R4 resources against the structure table, required value sets and invariants."""

    def __init__(
        self,
        table: StructureTable,
        valuesets: BindingSource,
        *,
        codings: CodingCheck | None = None,
        max_issues: int = 100,
    ) -> None:
        self.table = table
        self.valuesets = valuesets
        self.codings = codings
        self.max_issues = max(1, max_issues)
        self._checkers = checkers(table.primitive_regex)
        self._plans: dict[str, _Plan] = {}

    def validate(self, resource: Any, *, expected_type: str | None = None) -> list[Issue]:
        """The problems of a resource (errors, possibly warnings); an empty list means it is valid."""
        run = _Run(self)
        try:
            if type(resource) is not dict:
                run.add("structure", f"A resource must be a JSON object, not {json_type(resource)}", "")
                return run.out
            rtype = resource.get("resourceType")
            if type(rtype) is not str or not self.table.is_resource_type(rtype):
                run.bad_resource_type(rtype, "")
                return run.out
            if expected_type is not None and rtype != expected_type:
                msg = f"resourceType '{rtype}' does not match the expected type '{_clip(expected_type)}'"
                run.add("invalid", msg, rtype)
            run.walk(resource, self.plan(rtype), rtype, (resource, resource), 0)
        except _Stop:
            pass
        return run.out

    def plan(self, name: str) -> _Plan:
        """The precomputed plan of a resource, datatype or backbone type (built on first use)."""
        plan = self._plans.get(name)
        if plan is None:
            plan = self._build(name)
            self._plans[name] = plan
        return plan

    def _build(self, name: str) -> _Plan:
        tdef = self.table.type(name)
        plan = _Plan(name)
        # Parts of datatypes (Timing.repeat, Dosage.doseAndRate) are Elements, not BackboneElements, but the
        # structure table derives every nested part from BackboneElement: drop what Element lacks.
        datatype_part = (
            tdef.kind == "backbone" and self.table.type(name.split(".", 1)[0]).kind == "complex-type"
        )
        for key, jkey in tdef.keys.items():
            el, type_name = jkey.element, jkey.type
            if datatype_part and key == "modifierExtension":
                continue
            if tdef.kind == "resource" and key == "id":
                type_name = "id"  # R4 declares Resource.id as System.String with fhir-type 'string'
            choice = el.name if el.choice else None
            if type_name in PRIMITIVE_TYPES:
                slot = _Slot(key, type_name, _PRIMITIVE, el.many, choice)
                slot.check = self._checkers[type_name]
                ext = _Slot("_" + key, type_name, _ELEMENT, el.many, choice)
                ext.prim = key
                plan.slots[ext.key] = ext
            else:
                slot = _Slot(
                    key, type_name, _RESOURCE if type_name == "Resource" else _COMPLEX, el.many, choice
                )
            exp = None if el.binding is None else self.valuesets.expansion(el.binding)
            if exp is not None and type_name in ("code", "Coding", "CodeableConcept"):
                slot.valueset = el.binding
                if type_name == "code":
                    slot.codes = exp.codes
                else:
                    slot.expansion = exp
            plan.slots[key] = slot
        required = []
        for el in tdef.required:
            keys = [k for k, j in tdef.keys.items() if j.element is el]
            keys += ["_" + k for k in keys if "_" + k in plan.slots]
            required.append((el.name, tuple(keys)))
        plan.required = tuple(required)
        if tdef.kind == "resource":
            plan.slots["resourceType"] = _Slot("resourceType", "code", _SKIP, False, None)
            if "contained" in tdef.elements:
                plan.invariants += invariants_for("DomainResource")
        return plan


class _Run:
    """One validation: walks the JSON and collects issues until ``max_issues``."""

    __slots__ = ("limit", "out", "validator")

    def __init__(self, validator: Validator) -> None:
        self.validator = validator
        self.limit = validator.max_issues
        self.out: list[Issue] = []

    def walk(self, node: dict[Any, Any], plan: _Plan, path: str, scope: Scope, depth: int) -> None:
        """Check one JSON object of type ``plan.name`` and, recursively, everything in it."""
        if depth > MAX_DEPTH:
            self.add("structure", f"Content is nested more than {MAX_DEPTH} levels deep", path)
            return
        slots = plan.slots
        choices: dict[str, str] | None = None
        for key, value in node.items():
            slot = slots.get(key)
            if slot is None:
                self.unknown(key, plan, path)
                continue
            if slot.choice is not None:
                if choices is None:
                    choices = {}
                first = choices.setdefault(slot.choice, slot.prim)
                if first != slot.prim:
                    msg = (
                        f"Choice element '{slot.choice}[x]' has more than one type: '{first}', '{slot.prim}'"
                    )
                    self.add("structure", msg, f"{path}.{slot.choice}")
            kind = slot.kind
            if kind == _PRIMITIVE:
                # Valid values are screened inline; self.primitive explains what is wrong.
                check, codes = slot.check, slot.codes
                if not slot.many:
                    if check(value) is not None or (codes is not None and value not in codes):
                        self.primitive(value, slot, path, -1)
                elif type(value) is list and value:
                    ext = node.get("_" + key)
                    for i, item in enumerate(value):
                        if item is not None:
                            if check(item) is not None or (codes is not None and item not in codes):
                                self.primitive(item, slot, path, i)
                        elif not (type(ext) is list and i < len(ext) and type(ext[i]) is dict):
                            msg = f"Element '{key}' has a null item without an extension in '_{key}'"
                            self.add("structure", msg, f"{path}.{key}[{i}]")
                else:
                    self.not_array(key, value, f"{path}.{key}")
            elif kind == _COMPLEX:
                if not slot.many:
                    self.complex(value, slot, f"{path}.{key}", scope, depth)
                elif type(value) is list and value:
                    for i, item in enumerate(value):
                        self.complex(item, slot, f"{path}.{key}[{i}]", scope, depth)
                else:
                    self.not_array(key, value, f"{path}.{key}")
            elif kind == _RESOURCE:
                container = scope[1] if key == "contained" else None
                if not slot.many:
                    self.nested(value, f"{path}.{key}", container, depth)
                elif type(value) is list and value:
                    for i, item in enumerate(value):
                        self.nested(item, f"{path}.{key}[{i}]", container, depth)
                else:
                    self.not_array(key, value, f"{path}.{key}")
            elif kind == _ELEMENT:
                self.element(node, slot, path, scope, depth)
        for name, keys in plan.required:
            for key in keys:
                if key in node:
                    break
            else:
                self.add("required", f"Missing required element '{name}'", f"{path}.{name}")
        for ikey, rule in plan.invariants:
            try:
                holds = rule(node, scope[0], scope[1])
            except (TypeError, AttributeError, ValueError, KeyError, IndexError):
                holds = True  # content this malformed is already reported by the structural checks
            if not holds:
                self.add("invariant", f"Constraint {ikey} failed: {describe(ikey)}", path)

    def primitive(self, value: Any, slot: _Slot, path: str, index: int) -> None:
        """Check one primitive value (``index`` ≥ 0 for an item of a repeating element)."""
        problem = slot.check(value)
        if problem is None:
            if slot.codes is None or value in slot.codes:
                return
            code = "code-invalid"
            shown = f"value {_show(value)}" if _echoable(slot, value) else "a value"
            msg = f"Element '{slot.key}' has {shown}, not in required value set {slot.valueset}"
        else:
            code, msg = problem[0], _primitive_message(problem, slot, value)
        self.add(code, msg, f"{path}.{slot.key}" if index < 0 else f"{path}.{slot.key}[{index}]")

    def complex(self, item: Any, slot: _Slot, path: str, scope: Scope, depth: int) -> None:
        """Check one datatype or backbone element object."""
        if type(item) is not dict:
            self.add("structure", f"Element '{slot.key}' must be a JSON object, not {json_type(item)}", path)
        elif not item or (len(item) == 1 and "id" in item):
            self.add("structure", f"Element '{slot.key}' must have content, not be empty (ele-1)", path)
        else:
            plan = slot.plan
            if plan is None:
                plan = slot.plan = self.validator.plan(slot.type)
            self.walk(item, plan, path, scope, depth + 1)
            if slot.expansion is not None and not _coded_in(item, slot.type, slot.expansion):
                msg = f"Element '{slot.key}' has no code from required value set {slot.valueset}"
                self.add("code-invalid", msg, path)
            if slot.type == "Coding" and self.validator.codings is not None:
                self.coding(item, path)

    def coding(self, item: dict[Any, Any], path: str) -> None:
        """Check a Coding's code against its code system when the terminology holds it completely."""
        system, code = item.get("system"), item.get("code")
        if type(system) is not str or type(code) is not str:
            return
        assert self.validator.codings is not None
        problem = self.validator.codings.coding_problem(system, code)
        if problem is not None:
            shown = f"Code {_show(code)}" if not _FREE_TEXT.search(code) else "Its code"
            self.add("code-invalid", f"{shown} {problem}", f"{path}.code")

    def nested(self, value: Any, path: str, container: Any, depth: int) -> None:
        """Check a resource held in an element (contained, Bundle.entry.resource, Parameters)."""
        if type(value) is not dict:
            self.add("structure", f"A resource must be a JSON object, not {json_type(value)}", path)
            return
        rtype = value.get("resourceType")
        if type(rtype) is not str or not self.validator.table.is_resource_type(rtype):
            self.bad_resource_type(rtype, path)
            return
        if container is not None:
            self.contained_rules(value, path)
        scope = (value, value if container is None else container)
        self.walk(value, self.validator.plan(rtype), path, scope, depth + 1)

    def contained_rules(self, value: dict[Any, Any], path: str) -> None:
        """Rules for contained resources: an id, dom-2, dom-4 and dom-5."""
        if "id" not in value:
            self.add("required", "A contained resource must have an id (it is referenced as '#id')", path)
        if "contained" in value:
            self.add("invariant", f"Constraint dom-2 failed: {_DOM[2]}", f"{path}.contained")
        meta = value.get("meta")
        if type(meta) is dict:
            if "versionId" in meta or "lastUpdated" in meta:
                self.add("invariant", f"Constraint dom-4 failed: {_DOM[4]}", f"{path}.meta")
            if "security" in meta:
                self.add("invariant", f"Constraint dom-5 failed: {_DOM[5]}", f"{path}.meta.security")

    def element(self, node: dict[Any, Any], slot: _Slot, path: str, scope: Scope, depth: int) -> None:
        """Check ``_name``: id and extensions of primitive ``name``, item by item if it repeats."""
        name, value = slot.prim, node[slot.key]
        if not slot.many:
            self.extension_of(value, slot, f"{path}.{name}", scope, depth, has_value=name in node)
            return
        if type(value) is not list or not value:
            self.not_array(slot.key, value, f"{path}.{name}")
            return
        values = node.get(name)
        if type(values) is list and len(values) != len(value):
            msg = f"'{slot.key}' must have as many items as '{name}' ({len(value)} instead of {len(values)})"
            self.add("structure", msg, f"{path}.{name}")
        for i, item in enumerate(value):
            has_value = type(values) is list and i < len(values) and values[i] is not None
            if item is not None:
                self.extension_of(item, slot, f"{path}.{name}[{i}]", scope, depth, has_value=has_value)
            elif not (type(values) is list and i < len(values)):
                msg = f"'{slot.key}' has a null item with no value in '{name}'"
                self.add("structure", msg, f"{path}.{name}[{i}]")

    def extension_of(self, item: Any, slot: _Slot, path: str, scope: Scope, depth: int, *, has_value: bool) -> None:  # fmt: skip
        """Check one Element object (id, extension) that extends a primitive value."""
        if type(item) is not dict:
            self.add("structure", f"Element '{slot.key}' must be a JSON object, not {json_type(item)}", path)
        elif not item or (len(item) == 1 and "id" in item and not has_value):
            self.add("structure", f"'{slot.key}' must have an extension or a value (ele-1)", path)
        else:
            self.walk(item, self.validator.plan("Element"), path, scope, depth + 1)

    def add(self, code: str, diagnostics: str, path: str) -> None:
        """Record an error; stop the run once the limit is reached."""
        self.out.append(Issue("error", code, diagnostics, (path,) if path else (), RHIP_CODE))
        if len(self.out) >= self.limit:
            raise _Stop

    def unknown(self, key: Any, plan: _Plan, path: str) -> None:
        """Report a property that is not an element of the object's type."""
        if type(key) is not str:
            self.add("structure", "Property names must be strings", path)
        elif key == "fhir_comments":
            self.add("structure", "'fhir_comments' is not allowed in FHIR R4 JSON", f"{path}.{key}")
        elif key.startswith("_") and key[1:] in plan.slots:
            msg = f"'{_clip(key)}' is not allowed: '{_clip(key[1:])}' is not a primitive element"
            self.add("structure", msg, f"{path}.{_clip(key[1:])}")
        else:
            self.add("structure", f"Unknown element '{_clip(key)}'", f"{path}.{_clip(key)}")

    def not_array(self, key: str, value: Any, path: str) -> None:
        """Report a repeating element that is not a non-empty JSON array."""
        if type(value) is list:
            self.add("structure", f"Element '{key}' must not be an empty array", path)
        else:
            self.add("structure", f"Element '{key}' must be a JSON array, not {json_type(value)}", path)

    def bad_resource_type(self, rtype: Any, path: str) -> None:
        """Report a missing, malformed or unknown resourceType."""
        if rtype is None:
            self.add("required", "Missing 'resourceType'", path)
        elif type(rtype) is not str:
            self.add("structure", f"'resourceType' must be a JSON string, not {json_type(rtype)}", path)
        else:
            self.add("invalid", f"'{_clip(rtype)}' is not a concrete FHIR R4 resource type", path)


_DOM = {
    2: "If the resource is contained in another resource, it SHALL NOT contain nested Resources",
    4: "If a resource is contained in another resource, it SHALL NOT have a meta.versionId or a "
    "meta.lastUpdated",
    5: "If a resource is contained in another resource, it SHALL NOT have a security label",
}


def _accept(value: Any) -> None:
    return None


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _echoable(slot: _Slot, value: Any) -> bool:
    """Whether a bad value may appear in diagnostics: booleans, and short ASCII codes.

    Anything else may be personal data put in the wrong place (an ID number in ``birthDate``, a phone
    number in a decimal, a name in ``gender``), and diagnostics reach logs, import reports and clients.
    """
    if not slot.echo or isinstance(value, bool):
        return slot.echo and isinstance(value, bool)
    if slot.type != "code" or not isinstance(value, str):
        return False
    return len(value) <= 40 and value.isascii() and not _FREE_TEXT.search(value)


def _show(value: Any) -> str:
    return f"'{_clip(value)}'" if isinstance(value, str) else _clip(str(value))


def _primitive_message(problem: Problem, slot: _Slot, value: Any) -> str:
    code, what = problem
    if code == "structure":
        return f"Element '{slot.key}' {what}, not {json_type(value)}"
    shown = f": {_show(value)}" if _echoable(slot, value) else ""
    return f"Element '{slot.key}' {what}{shown}"


def _coded_in(item: dict[Any, Any], type_name: str, exp: Expansion) -> bool:
    """Whether a Coding, or some Coding of a CodeableConcept, is in a required value set."""
    codings = [item] if type_name == "Coding" else item.get("coding")
    if type(codings) is not list:
        return False
    for coding in codings:
        if type(coding) is not dict:
            continue
        system, code = coding.get("system"), coding.get("code")
        if type(code) is not str:
            continue
        if system is None and code in exp.codes:
            return True
        if type(system) is str and (system, code) in exp.pairs:
            return True
    return False


@cache
def validator() -> Validator:
    """The process-wide validator over the R4 structure table and required value sets."""
    return Validator(structure(), required_valuesets())
