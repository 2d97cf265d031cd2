"""Which institution sent a resource: its ``meta.source``, else the Organization it names as provider.

Every door stamps what an institution sends with ``meta.source = urn:rhip:source:<channel>:<institution
code>`` (FHIR REST by the security layer for an institution's token, HL7 v2/v3 and CDA by their mappings;
rhip.security.facts), and the security layer lets an institution change only what carries its own source.
So the source names the sender. Resources loaded in bulk by an operator (``rhip import``: the synthetic
region of ``make demo``) carry none; for them the institution is the Organization the resource names as
the one that provided the care (``PROVIDER_PATHS``), or the provider of the Encounter it belongs to,
identified by its institution code (identifier ``urn:oid:2.16.156.10011.1.5``). Anything else counts as
unattributed (``""``): it is in the region's figures and in no institution's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rhip.security.facts import source_institution

INSTITUTION_SYSTEM = "urn:oid:2.16.156.10011.1.5"
# Elements naming the Organization that provided the care, per resource type (first found wins).
PROVIDER_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Encounter": (("serviceProvider",),),
    "Patient": (("managingOrganization",),),
    "Observation": (("performer",),),
    "DiagnosticReport": (("performer",),),
    "Immunization": (("performer", "actor"),),
    "MedicationDispense": (("performer", "actor"),),
    "Procedure": (("performer", "actor"),),
    "Organization": (),
}
# Elements pointing at the Encounter whose provider stands in (diagnoses, prescriptions …).
ENCOUNTER_PATHS = ("encounter", "context")


def references(resource: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    """The ``reference`` strings found along ``path`` (lists flattened)."""
    nodes: list[Any] = [resource]
    for name in path:
        found: list[Any] = []
        for node in nodes:
            value = node.get(name) if isinstance(node, dict) else None
            found.extend(value if isinstance(value, list) else [value] if value is not None else [])
        nodes = found
    return [n["reference"] for n in nodes if isinstance(n, dict) and isinstance(n.get("reference"), str)]


class Attributor:
    """Finds the institution of resources, reading Organizations and Encounters through ``read`` (cached)."""

    def __init__(self, read: Callable[[str, str], Mapping[str, Any] | None]) -> None:
        self.read = read
        self._codes: dict[str, str] = {}

    def institution(self, resource: Mapping[str, Any]) -> str:
        """The institution code of ``resource``; "" when it cannot be told."""
        meta = resource.get("meta")
        source = meta.get("source") if isinstance(meta, dict) else None
        code = source_institution(source if isinstance(source, str) else None)
        if code:
            return code
        resource_type = str(resource.get("resourceType", ""))
        for path in PROVIDER_PATHS.get(resource_type, ()):
            for ref in references(resource, path):
                if ref.startswith("Organization/"):
                    return self.organization_code(ref.removeprefix("Organization/"))
        for name in ENCOUNTER_PATHS:
            for ref in references(resource, (name,)):
                if ref.startswith("Encounter/"):
                    encounter = self.read("Encounter", ref.removeprefix("Encounter/"))
                    if encounter is not None:
                        return self.institution(encounter)
        return ""

    def organization_code(self, org_id: str) -> str:
        """The institution code of an Organization (its id when it has none)."""
        known = self._codes.get(org_id)
        if known is not None:
            return known
        org = self.read("Organization", org_id)
        code = ""
        if org is not None:
            code = next(
                (
                    str(i["value"])
                    for i in org.get("identifier") or ()
                    if isinstance(i, dict) and i.get("system") == INSTITUTION_SYSTEM and i.get("value")
                ),
                "",
            )
        if len(self._codes) > 100_000:  # a region has thousands of institutions, not more
            self._codes.clear()
        self._codes[org_id] = code or f"Organization/{org_id}"
        return self._codes[org_id]
