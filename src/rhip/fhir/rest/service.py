"""FhirService: routes a FhirRequest to its interaction and turns every error into an OperationOutcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from rhip.core.errors import InvalidRequest, MethodNotAllowed, NotSupported, ResourceNotFound, RhipError
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest import operations
from rhip.fhir.rest.binary import native_binary, wants_native_binary
from rhip.fhir.rest.bundles import BundleProcessor
from rhip.fhir.rest.extensions import Extensions
from rhip.fhir.rest.http import check_accept
from rhip.fhir.rest.interactions import Interactions
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.outcome import dumps, outcome_for_error

log = logging.getLogger("rhip.fhir")


class FhirService:
    """The FHIR RESTful API over one repository."""

    def __init__(
        self,
        repository: FhirRepository,
        interactions: Interactions,
        capability: Callable[[str], dict[str, Any]],
        validator: operations.ValidatorLike,
        extensions: Extensions | None = None,
        operation_gate: Callable[[str | None, str, str | None], None] | None = None,
    ) -> None:
        self.repository = repository
        # Asked before a registered operation runs: (resource type, code, instance id); raises to refuse.
        self.operation_gate = operation_gate
        self.interactions = interactions
        self.capability = capability
        self.validator = validator
        # Operations and search parameters capabilities contribute (wired by rhip.bootstrap).
        self.extensions = extensions if extensions is not None else Extensions()
        self.bundles = BundleProcessor(self)

    def handle(self, req: FhirRequest) -> FhirResponse:
        """Answer one request; errors become OperationOutcomes with their HTTP status, never a crash."""
        head = req.method.upper() == "HEAD"
        if head:
            # HEAD is GET without the body (status and headers are the same).
            req = FhirRequest("GET", req.path, req.query, req.headers, req.body, req.base_url)
        try:
            segments = req.segments()
            if wants_native_binary(req):
                response = native_binary(self.repository, req)
            else:
                if not (segments and segments[-1].startswith("$")):
                    check_accept(req)  # an operation chooses its own media type (CDA, HTML …)
                response = self.dispatch(self.repository, req)
        except RhipError as error:
            response = error_response(error)
        if head:
            response.body = None
        return response

    def dispatch(self, repo: FhirRepository, req: FhirRequest) -> FhirResponse:
        """Route a request to its interaction on ``repo`` (errors propagate)."""
        it = self.interactions
        method = req.method.upper()
        seg = req.segments()
        n = len(seg)
        criteria = "&".join(f"{k}={v}" for k, v in req.query) if req.query else ""
        if n == 0:
            if method == "POST":
                return self.bundles.process(repo, req)
            if method == "GET":
                raise NotSupported(
                    "System-level search is not supported; search a resource type, e.g. GET /fhir/Patient?name=…"
                )
            raise MethodNotAllowed(f"{method} is not allowed on the service base")
        head = seg[0]
        if head == "metadata" and n == 1:
            _only(method, "GET")
            return FhirResponse(200, dumps(self.capability(req.base_url)))
        if head == "_history" and n == 1:
            _only(method, "GET")
            return it.history(repo, req)
        if head.startswith("$"):
            if n != 1:
                raise ResourceNotFound(f"Unknown path /{req.path}")
            return operations.system_operation(self, repo, req, head)
        rtype = head
        definitions = rtype == "OperationDefinition"
        if n == 1:
            if method == "GET":
                if definitions:
                    return operations.definition_search(self, req)
                return it.search(repo, req, rtype, extensions=self.extensions)
            if method == "POST":
                return it.create(repo, req, rtype)
            if method == "PUT":
                _needs_criteria(criteria, "PUT")
                return it.conditional_update(repo, req, rtype, _raw_criteria(req))
            if method == "DELETE":
                _needs_criteria(criteria, "DELETE")
                return it.conditional_delete(repo, req, rtype, _raw_criteria(req))
            if method == "PATCH":
                _needs_criteria(criteria, "PATCH")
                return it.patch(repo, req, rtype, None, _raw_criteria(req))
            raise MethodNotAllowed(f"{method} is not allowed on /{rtype}")
        second = seg[1]
        if n == 2 and second == "_search":
            _only(method, "POST")
            if definitions:
                return operations.definition_search(self, req, post=True)
            return it.search(repo, req, rtype, post=True, extensions=self.extensions)
        if n == 2 and second == "_history":
            _only(method, "GET")
            return it.history(repo, req, rtype)
        if second.startswith("$"):
            if n != 2:
                raise ResourceNotFound(f"Unknown path /{req.path}")
            return operations.type_operation(self, repo, req, rtype, second)
        rid = second
        if definitions and n == 2 and method != "GET" and rid in self.extensions.definitions():
            raise MethodNotAllowed(
                f"OperationDefinition/{rid} defines an operation of this server; it is read-only"
            )
        if n == 2:
            if method == "GET":
                if definitions:
                    return operations.definition_read(self, repo, req, rid)
                return it.read(repo, req, rtype, rid)
            if method == "PUT":
                return it.update(repo, req, rtype, rid)
            if method == "DELETE":
                return it.delete(repo, req, rtype, rid)
            if method == "PATCH":
                return it.patch(repo, req, rtype, rid)
            raise MethodNotAllowed(f"{method} is not allowed on /{rtype}/{rid}")
        third = seg[2]
        if third == "_history":
            _only(method, "GET")
            if n == 3:
                return it.history(repo, req, rtype, rid)
            if n == 4:
                return it.vread(repo, req, rtype, rid, seg[3])
        elif third.startswith("$") and n == 3:
            return operations.instance_operation(self, repo, req, rtype, rid, third)
        elif n == 3:
            _only(method, "GET")
            it.check_type(rtype)
            return it.search(repo, req, third, compartment=(rtype, rid), extensions=self.extensions)
        raise ResourceNotFound(f"Unknown path /{req.path}")


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"Only {allowed} is allowed here, not {method}")


def _needs_criteria(criteria: str, method: str) -> None:
    if not criteria:
        raise InvalidRequest(
            f"{method} on a resource type needs search criteria (conditional {method.lower()}) or an id"
        )


def _raw_criteria(req: FhirRequest) -> str:
    return urlencode([(k, v) for k, v in req.query if k not in ("_format", "_pretty")])


def error_response(error: RhipError) -> FhirResponse:
    """The OperationOutcome response of an error."""
    if error.http_status >= 500:
        log.warning("request failed: %s %s", error.code, type(error).__name__)
    return FhirResponse(error.http_status, dumps(outcome_for_error(error)))
