"""The registries' identifier rules over whole FHIR resources, checked on every write of an Organization or
a Practitioner whichever door makes it (:class:`CheckedOnWrite`, the store's preparer, wired by bootstrap).

A form or CSV row is checked field by field first (rhip.registries.records), for a message per field; a
resource is checked here: the USCC's check characters right, one institution code and one licence at most,
division codes of digits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rhip.core.errors import Issue, ValidationFailed
from rhip.registries.fhir_port import FhirCall, search_all
from rhip.registries.identifiers import (
    DIVISION_CODE,
    DIVISION_EXTENSION,
    INSTITUTION_CODE,
    INSTITUTION_LICENCE,
    PRACTITIONER_LICENCE,
    STAFF_NO,
    USCC,
    uscc_problem,
)
from rhip.registries.references import resolve_institutions
from rhip.registries.resolver import InstitutionResolver

RULE_BROKEN = "RHIP-REG-0001"  # an identifier of the registries breaks its rule (OperationOutcome issue code)
_NAMES = {
    INSTITUTION_CODE: "institution code (医疗卫生机构代码)",
    INSTITUTION_LICENCE: "institution licence (医疗机构执业许可证登记号)",
    PRACTITIONER_LICENCE: "practitioner licence (执业证书编码)",
    STAFF_NO: "staff number (工号)",
}


def _identifiers(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(i.get("system", "")), str(i.get("value", "")))
        for i in resource.get("identifier") or ()
        if isinstance(i, dict)
    ]


def _code_problems(found: list[tuple[str, str]], single: tuple[str, ...]) -> list[str]:
    # The characters of a code are not checked here: a door carries what senders call themselves (an HL7
    # v2 MSH-4 may be "Ntierprise Clinic"), and refusing it would lose the message; forms and CSV rows
    # check them (rhip.registries.records).
    problems = []
    for system in single:
        values = {v for s, v in found if s == system}
        if len(values) > 1:
            problems.append(f"one {_NAMES[system]} at most, not {len(values)}")
    return problems


def organization_problems(org: Mapping[str, Any]) -> list[str]:
    """What in an Organization breaks the registries' rules (empty when nothing does)."""
    found = _identifiers(org)
    problems = _code_problems(found, (INSTITUTION_CODE, INSTITUTION_LICENCE))
    for system, value in found:
        if system == USCC:
            why = uscc_problem(value)
            if why:
                problems.append(f"USCC (统一社会信用代码) {value!r}: {why}")
    for address in org.get("address") or ():
        for ext in (address.get("extension") or ()) if isinstance(address, dict) else ():
            code = (
                ext.get("valueCode")
                if isinstance(ext, dict) and ext.get("url") == DIVISION_EXTENSION
                else None
            )
            if code is not None and not DIVISION_CODE.match(str(code)):
                problems.append(f"division {code!r}: 2 to 12 digits (GB/T 2260 and below)")
    return problems


def practitioner_problems(practitioner: Mapping[str, Any]) -> list[str]:
    """What in a Practitioner breaks the registries' rules (empty when nothing does)."""
    return _code_problems(_identifiers(practitioner), (PRACTITIONER_LICENCE,))


_CHECKS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "Organization": organization_problems,
    "Practitioner": practitioner_problems,
}


class CheckedOnWrite:
    """The rules as the store's ResourcePreparer: an Organization or a Practitioner that breaks them is
    refused (422, ``RHIP-REG-0001``, one issue per problem) whichever door writes it; other resources pass.

    Given ``institutions`` (bootstrap sets it once the FHIR service exists), a reference to an institution by
    its code gets the literal reference of the registered Organization (:mod:`rhip.registries.references`).
    """

    def __init__(self, institutions: InstitutionResolver | None = None) -> None:
        self.institutions = institutions

    def prepare(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource to store (references resolved); ValidationFailed when it breaks a rule."""
        rtype = resource.get("resourceType")
        check = _CHECKS.get(rtype) if isinstance(rtype, str) else None
        problems = check(resource) if check is not None else []
        if problems:
            issues = [Issue("error", "value", p, ("identifier",), RULE_BROKEN) for p in problems]
            raise ValidationFailed("", issues=issues, code=RULE_BROKEN)
        if self.institutions is not None:
            resolved = resolve_institutions(resource, self.institutions)
            resource = resolved if resolved is not None else resource
        return resource


def stored_problems(
    fhir: FhirCall, resource_type: str, limit: int = 1_000_000
) -> Iterator[tuple[str, list[str]]]:
    """(id, problems) of every stored Organization or Practitioner that breaks a rule (written before the
    rules were checked on write, or imported around them)."""
    check = _CHECKS[resource_type]
    for resource in search_all(fhir, resource_type, [("_count", "500")], limit):
        problems = check(resource)
        if problems:
            yield str(resource.get("id", "")), problems
