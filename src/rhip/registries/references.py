"""References to an institution by its code made to point at its registered Organization.

Every door may name an institution by identifier instead of by resource id (a logical reference:
``"serviceProvider": {"identifier": {"system": "urn:oid:2.16.156.10011.1.5", "value": "510703H01"}}``): the
HL7 v2 and CDA mappings do, beside a conditional create of the Organization in the same transaction, and so
may FHIR clients. So that such data points at the Organization the registry holds for the institution, the
store's preparer (:class:`rhip.registries.rules.CheckedOnWrite`) gives each such reference the literal
``Organization/{id}`` of the registered Organization, keeping the identifier: ``_include``, chained searches and
``Encounter?service-provider=Organization/…`` then follow it. A code not registered yet (its Organization
created by the same transaction, or never registered) keeps the logical reference alone; it is not refused,
since a hospital's message must not be lost for it, and the reference gains its target once a later version
is written. The registry's choice among several Organizations with one code is the resolver's.
"""

from __future__ import annotations

from typing import Any

from rhip.registries.identifiers import INSTITUTION_CODE
from rhip.registries.resolver import InstitutionResolver

_REFERENCE_KEYS = frozenset({"reference", "type", "identifier", "display", "id", "extension"})


def _institution_code(node: dict[str, Any]) -> str | None:
    """The institution code of a logical reference to an institution (None: not one)."""
    ident = node.get("identifier")
    if not isinstance(ident, dict) or ident.get("system") != INSTITUTION_CODE or "reference" in node:
        return None
    if node.keys() - _REFERENCE_KEYS or node.get("type", "Organization") != "Organization":
        return None  # an element that merely holds an Identifier, or a reference to something else
    value = ident.get("value")
    return value if isinstance(value, str) and value else None


def resolve_institutions(resource: dict[str, Any], resolver: InstitutionResolver) -> dict[str, Any] | None:
    """A copy of the resource with literal references to registered institutions (None: nothing to add)."""

    def walk(node: Any) -> Any:
        changed: Any = None
        if isinstance(node, dict):
            code = _institution_code(node)  # a resource (resourceType) is never one
            if code is not None:
                found = resolver.organization_id(code)
                return None if found is None else {**node, "reference": f"Organization/{found}"}
            for key, value in node.items():
                if isinstance(value, (dict, list)):
                    new = walk(value)
                    if new is not None:
                        changed = changed if changed is not None else dict(node)
                        changed[key] = new
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, (dict, list)):
                    new = walk(value)
                    if new is not None:
                        changed = changed if changed is not None else list(node)
                        changed[i] = new
        return changed

    result = walk(resource)
    return result if isinstance(result, dict) else None
