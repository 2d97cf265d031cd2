"""The CapabilityStatement at ``/fhir/metadata``: built from the same registry the server searches with,
so it lists exactly the interactions, parameters and operations that work."""

from __future__ import annotations

from functools import cache
from typing import Any

from rhip.fhir.rest.extensions import Extensions, OperationSpec
from rhip.fhir.search.params import SearchParam, SearchParamRegistry

INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
# Leading composite components must be compared for equality; these kinds cannot be.
_UNSUPPORTED_LEADING = frozenset({"number", "date", "quantity"})
PATIENT_COMPARTMENT = "http://hl7.org/fhir/CompartmentDefinition/patient"


def _offered(param: SearchParam) -> bool:
    if param.type == "special":
        return False
    if param.type == "composite":
        return not any(c.type in _UNSUPPORTED_LEADING for c in param.components[:-1])
    return True


@cache
def _resources(registry: SearchParamRegistry, allow_multiple_delete: bool) -> tuple[dict[str, Any], ...]:
    out = []
    for rtype in sorted(registry.table.resource_types):
        params = registry.for_type(rtype)
        refs = sorted(p.code for p in params.values() if p.type == "reference")
        # `Type:*` includes every reference parameter of the type; a bare `*` is refused (rhip.fhir.search.parse).
        includes = [f"{rtype}:*", *(f"{rtype}:{r}" for r in refs)] if refs else []
        entry: dict[str, Any] = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            # Reads honour both If-Modified-Since and If-None-Match (rhip.fhir.rest.interactions.read).
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "multiple" if allow_multiple_delete else "single",
            "referencePolicy": ["literal", "logical"],
            "searchInclude": includes,
            "searchRevInclude": [],
            "searchParam": [
                {"name": p.code, "definition": p.url, "type": p.type}
                for p in sorted(params.values(), key=lambda p: p.code)
                if _offered(p)
            ],
        }
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {
                    "name": "validate",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                },
            ]
        else:
            entry["operation"] = [
                {
                    "name": "validate",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                }
            ]
        out.append(entry)
    # Reverse includes: for each type, the reference parameters of other types that can point at it.
    by_type = {e["type"]: e for e in out}
    for rtype in sorted(registry.table.resource_types):
        for p in registry.for_type(rtype).values():
            if p.type == "reference":
                for target in p.targets:
                    if target in by_type:
                        by_type[target]["searchRevInclude"].append(f"{rtype}:{p.code}")
    # FHIR forbids empty arrays: a type without reference parameters (or referrers) omits the element.
    for entry in out:
        for key in ("searchInclude", "searchRevInclude"):
            if not entry[key]:
                del entry[key]
    return tuple(out)


def capability_statement(
    registry: SearchParamRegistry,
    base_url: str,
    software_version: str,
    date: str,
    *,
    allow_multiple_delete: bool = False,
    extensions: Extensions | None = None,
) -> dict[str, Any]:
    """The server's CapabilityStatement for ``base_url``.

    ``allow_multiple_delete``: the ``fhir.allow_multiple_delete`` setting (conditional delete of several
    matches), shown as ``conditionalDelete`` ``multiple`` rather than ``single``.
    ``extensions``: the operations and search parameters capabilities contribute, listed with the rest.
    """
    resources = list(_resources(registry, allow_multiple_delete))
    system_operations: list[dict[str, Any]] = []
    if extensions is not None:
        resources = [_extended(entry, extensions) for entry in resources]
        system_operations = [
            _operation(s)
            for (rtype, _), s in sorted(extensions.operations.items(), key=_key)
            if rtype is None
        ]
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "rhip",
        "kind": "instance",
        "software": {"name": "rhip (区域全民健康信息平台)", "version": software_version},
        "implementation": {
            "description": "rhip regional health information platform FHIR server",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
                "searchParam": [
                    {
                        "name": "_count",
                        "type": "number",
                        "documentation": "Page size (at most the configured maximum)",
                    },
                    {"name": "_sort", "type": "string"},
                    {"name": "_total", "type": "token"},
                    {"name": "_summary", "type": "token"},
                    {"name": "_elements", "type": "string"},
                    {"name": "_include", "type": "string"},
                    {"name": "_revinclude", "type": "string"},
                ],
                "compartment": [PATIENT_COMPARTMENT],
            }
        ],
    }
    if system_operations:
        statement["rest"][0]["operation"] = system_operations
    return statement


def _key(item: tuple[tuple[str | None, str], OperationSpec]) -> tuple[str, str]:
    return item[0][0] or "", item[0][1]


def _operation(spec: OperationSpec) -> dict[str, Any]:
    return {"name": spec.code, "definition": spec.definition["url"]}


def _extended(entry: dict[str, Any], extensions: Extensions) -> dict[str, Any]:
    """A resource entry with the type's registered operations and search parameters (a new dict: the
    cached entries are shared)."""
    rtype = entry["type"]
    operations = [
        _operation(s) for (t, _), s in sorted(extensions.operations.items(), key=_key) if t == rtype
    ]
    params = extensions.params_of(rtype)
    if not operations and not params:
        return entry
    names = {p.name for p in params}
    # A registered parameter replaces a built-in one of the same name: the search resolves it first.
    search_params = [p for p in entry["searchParam"] if p["name"] not in names] + [
        {"name": p.name, "definition": p.definition_url, "type": p.type, "documentation": p.documentation}
        for p in params
    ]
    return {
        **entry,
        "operation": [*entry["operation"], *operations],
        "searchParam": sorted(search_params, key=lambda p: str(p["name"])),
    }
