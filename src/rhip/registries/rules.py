"""The registries' identifier rules over whole FHIR resources, for the doors that write them (the HL7 v3
organization and provider services, through a port the exchange declares; see docs/registries.md §6).

A form or CSV row is checked field by field (rhip.registries.records); a resource a door builds is checked
here: every identifier of a registries system well formed, the USCC's check characters right, one
institution code and one licence at most, division codes of digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rhip.registries.identifiers import (
    DIVISION_CODE,
    DIVISION_EXTENSION,
    INSTITUTION_CODE,
    INSTITUTION_LICENCE,
    PRACTITIONER_LICENCE,
    STAFF_NO,
    USCC,
    is_code,
    uscc_problem,
)

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
    problems = []
    for system, value in found:
        if system in _NAMES and not is_code(value):
            problems.append(f"{_NAMES[system]} {value!r}: letters, digits, . _ - (at most 64)")
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
