"""Operations: the built-in ``Patient/[id]/$everything`` and ``$validate`` (type and instance level), and
those capabilities register (rhip.fhir.rest.extensions) at system, type and instance level.

The built-in operations take precedence over registered ones of the same name. ``OperationDefinition/[id]``
of a registered operation is its definition from the registry, not from the store; a search on
OperationDefinition lists the registered definitions only (resources stored under other ids stay readable
by id, and the service refuses to change or delete a registered id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rhip.core.errors import InvalidRequest, Issue, MethodNotAllowed, NotSupported, UnknownSearchParameter
from rhip.fhir.repository import EverythingRequest, FhirRepository, SearchPage, StoredResource
from rhip.fhir.rest import output
from rhip.fhir.rest.extensions import OperationSpec
from rhip.fhir.rest.http import form_params, instant_param, json_body, preferences
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.outcome import dumps, outcome
from rhip.fhir.search.parse import split_unescaped, unescape

if TYPE_CHECKING:
    from rhip.fhir.rest.service import FhirService

# Search parameters of OperationDefinition the registry listing understands, and the element each compares.
DEFINITION_FILTERS = {"_id": "id", "url": "url", "code": "code", "name": "name"}
# A StoredResource needs a version and an instant, which registered definitions lack; Bundles show neither.
SERVED_SINCE = "1970-01-01T00:00:00Z"


class ValidatorLike(Protocol):
    """What $validate needs of a validator."""

    def validate(self, resource: Any, *, expected_type: str | None = None) -> list[Issue]:
        """Issues found in a resource."""


def system_operation(service: FhirService, repo: FhirRepository, req: FhirRequest, name: str) -> FhirResponse:
    """[base]/$operation: only operations capabilities register."""
    spec = service.extensions.operations.get((None, name[1:]))
    if spec is not None:
        return _run(service, spec, repo, req, None)
    elsewhere = service.extensions.operation_named(name[1:])
    if elsewhere:
        raise InvalidRequest(
            f"Operation {name} is not a system-level operation; invoke it on {_paths(elsewhere)}"
        )
    raise NotSupported(f"Operation {name} is not supported at the system level")


def type_operation(
    service: FhirService, repo: FhirRepository, req: FhirRequest, rtype: str, name: str
) -> FhirResponse:
    """[type]/$operation: the built-in ones first, then those capabilities register."""
    service.interactions.check_type(rtype)
    if name == "$validate":
        return validate(service, req, rtype, None)
    spec = service.extensions.operations.get((rtype, name[1:]))
    if spec is not None and spec.type_level:
        return _run(service, spec, repo, req, None)
    _elsewhere(service, name, f"/{rtype}/{name}")
    raise NotSupported(f"Operation {name} is not supported on {rtype}")


def instance_operation(
    service: FhirService, repo: FhirRepository, req: FhirRequest, rtype: str, rid: str, name: str
) -> FhirResponse:
    """[type]/[id]/$operation: the built-in ones first, then those capabilities register."""
    service.interactions.check_type(rtype)
    if name == "$everything" and rtype == "Patient":
        if req.method.upper() != "GET":
            raise MethodNotAllowed("$everything is invoked with GET")
        return everything(service, repo, req, rid)
    if name == "$validate":
        return validate(service, req, rtype, rid)
    spec = service.extensions.operations.get((rtype, name[1:]))
    if spec is not None and spec.instance_level:
        return _run(service, spec, repo, req, rid)
    _elsewhere(service, name, f"/{rtype}/[id]/{name}")
    raise NotSupported(f"Operation {name} is not supported on {rtype}/[id]")


def _run(
    service: FhirService, spec: OperationSpec, repo: FhirRepository, req: FhirRequest, rid: str | None
) -> FhirResponse:
    method = req.method.upper()
    if method not in spec.methods:
        raise MethodNotAllowed(f"${spec.code} is invoked with {' or '.join(spec.methods)}, not {method}")
    if service.operation_gate is not None:
        # Operations may answer from their own data (the resident index), not only through ``repo``.
        service.operation_gate(spec.resource_type, spec.code, rid)
    return spec.handler(repo, req, rid)


def _elsewhere(service: FhirService, name: str, path: str) -> None:
    """400 when a registered operation is invoked at a level where it is not offered."""
    found = service.extensions.operation_named(name[1:])
    if found:
        raise InvalidRequest(f"Operation {name} is not offered at {path}; invoke it on {_paths(found)}")


def _paths(specs: list[OperationSpec]) -> str:
    return " or ".join(s.levels() for s in specs)


def definition_read(service: FhirService, repo: FhirRepository, req: FhirRequest, rid: str) -> FhirResponse:
    """GET OperationDefinition/[id]: a registered operation's definition, else the stored resource."""
    definition = service.extensions.definitions().get(rid)
    if definition is None:
        return service.interactions.read(repo, req, "OperationDefinition", rid)
    return FhirResponse(200, dumps(definition))


def definition_search(service: FhirService, req: FhirRequest, post: bool = False) -> FhirResponse:
    """GET OperationDefinition?…: the registered operations' definitions, filtered by DEFINITION_FILTERS."""
    params = list(req.query) + (form_params(req) if post else [])
    strict = preferences(req).strict
    found = list(service.extensions.definitions().values())
    canonical: list[tuple[str, str]] = []
    ignored: list[Issue] = []
    summary = elements = None
    for name, value in params:
        if name in DEFINITION_FILTERS:
            wanted = {unescape(v) for v in split_unescaped(value, ",")}
            found = [d for d in found if d.get(DEFINITION_FILTERS[name]) in wanted]
        elif name == "_summary":
            summary = value
        elif name == "_elements":
            elements = [e for e in value.split(",") if e.strip()]
        elif name in ("_format", "_pretty", "_count", "_total"):
            continue  # one page holds every registered operation
        elif strict:
            raise UnknownSearchParameter(
                f"OperationDefinition is searched by {', '.join(DEFINITION_FILTERS)} only", expression=[name]
            )
        else:
            ignored.append(
                Issue("warning", "not-supported", f"Parameter '{name}' was ignored: not supported")
            )
            continue
        canonical.append((name, value))
    stored = [StoredResource("OperationDefinition", d["id"], 1, SERVED_SINCE, False, dumps(d)) for d in found]
    page = SearchPage([] if summary == "count" else stored, total=len(stored))
    links = output.links(req.base_url, "OperationDefinition", canonical, page)
    view = output.View(service.interactions.table, summary, elements)
    body = output.searchset(req.base_url, page, links, view, output.now_instant(), ignored)
    return FhirResponse(200, body)


def everything(service: FhirService, repo: FhirRepository, req: FhirRequest, patient_id: str) -> FhirResponse:
    """Patient/[id]/$everything with ``_since``, ``_type``, ``_count`` and paging."""
    since = None
    types: tuple[str, ...] | None = None
    count = 100
    page = None
    canonical: list[tuple[str, str]] = []
    for name, value in req.query:
        if name == "_since":
            since = instant_param(value, "_since")
        elif name == "_type":
            types = tuple(t.strip() for t in value.split(",") if t.strip())
        elif name == "_count":
            try:
                count = max(1, min(int(value), service.interactions.settings.max_count))
            except ValueError as exc:
                raise InvalidRequest("_count must be a whole number", expression=["_count"]) from exc
        elif name == "_page":
            page = value
            continue
        elif name not in ("_format", "_pretty"):
            raise InvalidRequest(f"Parameter '{name}' is not supported by $everything")
        canonical.append((name, value))
    result = repo.everything(EverythingRequest(patient_id, since, types, count, page))
    links = output.links(req.base_url, f"Patient/{patient_id}/$everything", canonical, result)
    view = output.View(service.interactions.table, None, None)
    return FhirResponse(200, output.searchset(req.base_url, result, links, view, output.now_instant()))


def validate(service: FhirService, req: FhirRequest, rtype: str, rid: str | None) -> FhirResponse:
    """$validate: the OperationOutcome of validating a resource (body, or a Parameters with ``resource``)."""
    if req.method.upper() != "POST":
        raise MethodNotAllowed("$validate is invoked with POST and the resource to check")
    body = json_body(req)
    resource = body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        resource = None
        parameters = body.get("parameter", [])
        if not isinstance(parameters, list):
            raise InvalidRequest("Parameters.parameter must be an array", expression=["Parameters.parameter"])
        for p in parameters:
            if isinstance(p, dict) and p.get("name") == "resource":
                resource = p.get("resource")
            elif isinstance(p, dict) and p.get("name") == "profile":
                raise NotSupported(
                    "Validation against profiles is not supported; the base R4 definitions are used"
                )
        if resource is None:
            raise InvalidRequest("Parameters for $validate need a 'resource' parameter")
    issues = service.validator.validate(resource, expected_type=rtype)
    if rid is not None and isinstance(resource, dict) and resource.get("id") not in (None, rid):
        issues.append(Issue("error", "invalid", f"The resource id does not match {rtype}/{rid}", ("id",)))
    if not issues:
        issues = [Issue("information", "informational", "No issues found: the resource is valid FHIR R4")]
    return FhirResponse(200, dumps(outcome(issues)))
