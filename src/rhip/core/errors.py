"""One exception hierarchy with stable error codes, shared by every door of the platform.

Every error a user can see carries a code such as ``RHIP-FHIR-0004`` that never changes meaning, an HTTP
status, the OperationOutcome ``issue.code`` it maps to, and optionally the element paths it concerns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One problem found in a request, as it will appear in an OperationOutcome."""

    severity: str  # fatal | error | warning | information
    code: str  # OperationOutcome issue type: invalid, structure, required, value, not-found, ...
    diagnostics: str
    expression: tuple[str, ...] = ()
    rhip_code: str = ""


class RhipError(Exception):
    """Base of every error the platform reports to a caller."""

    code = "RHIP-CORE-0000"
    http_status = 500
    issue_type = "exception"

    def __init__(
        self,
        message: str,
        *,
        expression: Sequence[str] = (),
        issues: Sequence[Issue] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.expression = tuple(expression)
        self.extra_issues = tuple(issues)

    def issues(self) -> list[Issue]:
        """The issues this error reports: its own, then any collected ones (e.g. from validation)."""
        own = Issue("error", self.issue_type, self.message, self.expression, self.code)
        if self.extra_issues and not self.message:
            return list(self.extra_issues)
        return [own, *self.extra_issues]


class InvalidRequest(RhipError):
    """The request is malformed: bad JSON, bad parameter, wrong resource type."""

    code = "RHIP-FHIR-0001"
    http_status = 400
    issue_type = "invalid"


class ResourceNotFound(RhipError):
    """No resource (or version) with that id exists."""

    code = "RHIP-FHIR-0002"
    http_status = 404
    issue_type = "not-found"


class ResourceGone(RhipError):
    """The resource existed and has been deleted."""

    code = "RHIP-FHIR-0003"
    http_status = 410
    issue_type = "deleted"


class ValidationFailed(RhipError):
    """The resource does not conform to the FHIR R4 structure or a required binding."""

    code = "RHIP-FHIR-0004"
    http_status = 422
    issue_type = "processing"


class VersionConflict(RhipError):
    """``If-Match`` named a version that is no longer current."""

    code = "RHIP-FHIR-0005"
    http_status = 412
    issue_type = "conflict"


class MultipleMatches(RhipError):
    """A conditional interaction matched more than one resource."""

    code = "RHIP-FHIR-0006"
    http_status = 412
    issue_type = "multiple-matches"


class Conflict(RhipError):
    """The request conflicts with the current state (e.g. id already taken in a transaction)."""

    code = "RHIP-FHIR-0007"
    http_status = 409
    issue_type = "conflict"


class UnsupportedMediaType(RhipError):
    """The body is not FHIR JSON."""

    code = "RHIP-FHIR-0008"
    http_status = 415
    issue_type = "not-supported"


class NotAcceptable(RhipError):
    """The client asked for a representation the server does not produce."""

    code = "RHIP-FHIR-0009"
    http_status = 406
    issue_type = "not-supported"


class PayloadTooLarge(RhipError):
    """The body is larger than the configured limit."""

    code = "RHIP-FHIR-0010"
    http_status = 413
    issue_type = "too-costly"


class MethodNotAllowed(RhipError):
    """The HTTP method is not defined for this URL."""

    code = "RHIP-FHIR-0011"
    http_status = 405
    issue_type = "not-supported"


class UnknownSearchParameter(RhipError):
    """A search parameter is not known and the client asked for strict handling."""

    code = "RHIP-FHIR-0012"
    http_status = 400
    issue_type = "not-supported"


class NotSupported(RhipError):
    """A well-formed request for something this server does not do."""

    code = "RHIP-FHIR-0013"
    http_status = 400
    issue_type = "not-supported"


class TooCostly(RhipError):
    """The request would return or touch more than the configured limit."""

    code = "RHIP-FHIR-0014"
    http_status = 400
    issue_type = "too-costly"


class UnprocessablePatch(RhipError):
    """A patch document is well-formed JSON but cannot be applied to the resource."""

    code = "RHIP-FHIR-0015"
    http_status = 422
    issue_type = "processing"


class StorageUnavailable(RhipError):
    """The database could not be reached or is locked for longer than the configured wait."""

    code = "RHIP-DB-0001"
    http_status = 503
    issue_type = "transient"


class Unauthenticated(RhipError):
    """No valid credentials: a missing, malformed, expired, revoked or foreign token (HTTP 401)."""

    code = "RHIP-SEC-0001"
    http_status = 401
    issue_type = "login"


class Forbidden(RhipError):
    """The caller is known but the policy does not allow this access (HTTP 403)."""

    code = "RHIP-SEC-0002"
    http_status = 403
    issue_type = "forbidden"


class TooManyRequests(RhipError):
    """The caller sent more requests than its rate limit allows (HTTP 429)."""

    code = "RHIP-SEC-0003"
    http_status = 429
    issue_type = "throttled"


@dataclass(frozen=True)
class ErrorCode:
    """A documented stable code."""

    code: str
    http_status: int
    summary: str
    aliases: tuple[str, ...] = field(default=())


ERROR_CLASSES: dict[str, type[RhipError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        ResourceNotFound,
        ResourceGone,
        ValidationFailed,
        VersionConflict,
        MultipleMatches,
        Conflict,
        UnsupportedMediaType,
        NotAcceptable,
        PayloadTooLarge,
        MethodNotAllowed,
        UnknownSearchParameter,
        NotSupported,
        TooCostly,
        UnprocessablePatch,
        StorageUnavailable,
        Unauthenticated,
        Forbidden,
        TooManyRequests,
    )
}


def error_catalogue() -> list[ErrorCode]:
    """Every stable code with its HTTP status and meaning, for docs and ``rhip errors``."""
    return [
        ErrorCode(code, cls.http_status, (cls.__doc__ or "").strip())
        for code, cls in sorted(ERROR_CLASSES.items())
    ]
