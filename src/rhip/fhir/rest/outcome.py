"""OperationOutcome: how every error and warning is reported."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from rhip.core.errors import Issue, RhipError


def issue_json(issue: Issue) -> dict[str, Any]:
    """One OperationOutcome.issue."""
    out: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics}
    if issue.rhip_code:
        out["details"] = {
            "coding": [{"system": "urn:rhip:error-code", "code": issue.rhip_code}],
            "text": issue.rhip_code,
        }
    if issue.expression:
        out["expression"] = list(issue.expression)
    return out


def outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource holding ``issues``."""
    return {"resourceType": "OperationOutcome", "issue": [issue_json(i) for i in issues]}


def outcome_for_error(error: RhipError) -> dict[str, Any]:
    """The OperationOutcome of an error."""
    return outcome(error.issues())


def information(text: str) -> dict[str, Any]:
    """An OperationOutcome with one informational issue."""
    return outcome([Issue("information", "informational", text)])


def dumps(value: Any) -> bytes:
    """Serialise JSON for a response (UTF-8, Chinese kept as is)."""
    return orjson.dumps(value)
