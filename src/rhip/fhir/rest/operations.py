"""Operations: ``Patient/[id]/$everything`` and ``$validate`` (type and instance level)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rhip.core.errors import InvalidRequest, Issue, MethodNotAllowed, NotSupported
from rhip.fhir.repository import EverythingRequest, FhirRepository
from rhip.fhir.rest import output
from rhip.fhir.rest.http import instant_param, json_body
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.outcome import dumps, outcome

if TYPE_CHECKING:
    from rhip.fhir.rest.service import FhirService


class ValidatorLike(Protocol):
    """What $validate needs of a validator."""

    def validate(self, resource: Any, *, expected_type: str | None = None) -> list[Issue]:
        """Issues found in a resource."""


def type_operation(
    service: FhirService, repo: FhirRepository, req: FhirRequest, rtype: str, name: str
) -> FhirResponse:
    """[type]/$operation."""
    service.interactions.check_type(rtype)
    if name == "$validate":
        return validate(service, req, rtype, None)
    raise NotSupported(f"Operation {name} is not supported on {rtype}")


def instance_operation(
    service: FhirService, repo: FhirRepository, req: FhirRequest, rtype: str, rid: str, name: str
) -> FhirResponse:
    """[type]/[id]/$operation."""
    service.interactions.check_type(rtype)
    if name == "$everything" and rtype == "Patient":
        if req.method.upper() != "GET":
            raise MethodNotAllowed("$everything is invoked with GET")
        return everything(service, repo, req, rid)
    if name == "$validate":
        return validate(service, req, rtype, rid)
    raise NotSupported(f"Operation {name} is not supported on {rtype}/[id]")


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
