"""CSV import and export of the directory: institutions (Organization) and practitioners (Practitioner).

An upload is read whole (at most :data:`MAX_BYTES`, :data:`MAX_ROWS` rows), as UTF-8 with or without a
byte-order mark. Each row creates or updates one resource through the platform's FHIR service, keyed by
its identifier (the institution code for Organizations, the licence number for Practitioners), and gets
its own result: created, updated, or refused with the reason. A file that cannot be read is one message.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rhip.web.portal.admin_dir_common import matches
from rhip.web.portal.admin_dir_records import (
    FHIR_ID,
    INSTITUTION_CODE,
    ORGANIZATION_COLUMNS,
    ORGANIZATION_REQUIRED,
    PRACTITIONER_COLUMNS,
    PRACTITIONER_LICENCE,
    PRACTITIONER_REQUIRED,
    RowError,
    apply_org,
    apply_practitioner,
    apply_role,
    check_org,
    check_practitioner,
)
from rhip.web.portal.core import PortalError

MAX_BYTES = 1024 * 1024
MAX_ROWS = 2000
Fhir = Callable[..., dict[str, Any] | None]


class FileProblem(ValueError):
    """A file that cannot be imported at all: a message key and what to put in it."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key, self.values = key, values


@dataclass
class RowResult:
    """What became of one row: ``created``, ``updated`` or ``refused`` (with a reason)."""

    line: int
    key: str
    outcome: str
    resource: str = ""
    reason_key: str = ""
    reason: str = ""


def columns_of(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The documented columns of a CSV kind and those required."""
    if kind == "practitioners":
        return PRACTITIONER_COLUMNS, PRACTITIONER_REQUIRED
    return ORGANIZATION_COLUMNS, ORGANIZATION_REQUIRED


def read_rows(data: bytes, kind: str) -> list[dict[str, str]]:
    """The rows of an uploaded CSV (column names trimmed, lower-cased); raises :class:`FileProblem`."""
    if len(data) > MAX_BYTES:
        raise FileProblem("dir.csv.too_big", limit=MAX_BYTES // 1024)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileProblem("dir.csv.encoding") from None
    if not text.strip():
        raise FileProblem("dir.csv.empty")
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        columns, required = columns_of(kind)
        missing = [c for c in required if c not in header]
        if missing:
            raise FileProblem("dir.csv.missing", columns=", ".join(missing), expected=", ".join(columns))
        rows: list[dict[str, str]] = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise FileProblem("dir.csv.too_many", limit=MAX_ROWS)
            rows.append({h: v for h, v in zip(header, values, strict=False) if h})
    except csv.Error:
        raise FileProblem("dir.csv.malformed") from None
    if not rows:
        raise FileProblem("dir.csv.empty")
    return rows


def _refused(line: int, key: str, error: Exception) -> RowResult:
    if isinstance(error, RowError):
        return RowResult(line, key, "refused", reason_key=error.key, reason=error.field)
    if isinstance(error, PortalError):
        return RowResult(line, key, "refused", reason_key=error.key, reason=error.detail)
    raise error


def import_rows(fhir: Fhir, kind: str, rows: Iterable[Mapping[str, str]]) -> list[RowResult]:
    """Create or update one resource per row through ``fhir`` (``Portal.fhir`` as the administrator)."""
    results = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        if kind == "practitioners":
            key = str(row.get("licence", "")).strip()
            try:
                results.append(_practitioner(fhir, line, row))
            except (RowError, PortalError) as error:
                results.append(_refused(line, key, error))
        else:
            key = str(row.get("code", "")).strip()
            try:
                results.append(_organization(fhir, line, row))
            except (RowError, PortalError) as error:
                results.append(_refused(line, key, error))
    return results


def _find(fhir: Fhir, rtype: str, system: str, value: str) -> dict[str, Any] | None:
    found = matches(fhir("GET", rtype, [("identifier", f"{system}|{value}"), ("_count", "2")]))
    if len(found) > 1:
        raise RowError("dir.err.ambiguous", "identifier")
    return found[0] if found else None


def _organization(fhir: Fhir, line: int, row: Mapping[str, str]) -> RowResult:
    fields = check_org(row)
    existing = _find(fhir, "Organization", INSTITUTION_CODE, fields["code"])
    new_id = f"org-{fields['code']}"
    if existing is None and not FHIR_ID.match(new_id):
        raise RowError("dir.err.code", "code")
    org = apply_org(existing, fields, new_id)
    saved = fhir("PUT", f"Organization/{org['id']}", body=org) or {}
    outcome = "updated" if existing is not None else "created"
    return RowResult(line, fields["code"], outcome, f"Organization/{saved.get('id', org['id'])}")


def _practitioner(fhir: Fhir, line: int, row: Mapping[str, str]) -> RowResult:
    fields = check_practitioner(row)
    organization = None
    if fields["institution_code"]:
        org = _find(fhir, "Organization", INSTITUTION_CODE, fields["institution_code"])
        if org is None:
            raise RowError("dir.err.no_institution", "institution_code")
        organization = str(org["id"])
    existing = _find(fhir, "Practitioner", PRACTITIONER_LICENCE, fields["licence"])
    res = apply_practitioner(existing, fields, organization)
    if existing is not None:
        saved = fhir("PUT", f"Practitioner/{existing['id']}", body=res) or {}
    else:
        saved = fhir("POST", "Practitioner", body=res) or {}
    pid = str(saved.get("id") or (existing or {}).get("id", ""))
    if organization and pid:
        _role(fhir, pid, organization, fields["department"])
    outcome = "updated" if existing is not None else "created"
    return RowResult(line, fields["licence"], outcome, f"Practitioner/{pid}")


def _role(fhir: Fhir, practitioner: str, organization: str, department: str) -> None:
    """Create (or bring up to date) the PractitionerRole tying the practitioner to the institution."""
    query = [
        ("practitioner", f"Practitioner/{practitioner}"),
        ("organization", f"Organization/{organization}"),
        ("_count", "1"),
    ]
    found = matches(fhir("GET", "PractitionerRole", query))
    if found and not department:
        return
    role = apply_role(found[0] if found else None, practitioner, organization, department)
    if found:
        fhir("PUT", f"PractitionerRole/{found[0]['id']}", body=role)
    else:
        fhir("POST", "PractitionerRole", body=role)


def export_csv(rows: Iterable[Mapping[str, str]], columns: tuple[str, ...]) -> bytes:
    """The rows as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: str) -> str:
    # A cell starting with = + - @ would be a formula in a spreadsheet: keep it text.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
