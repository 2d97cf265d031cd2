"""CSV import and export of the registries: one row per resource, keyed by its identifier.

Organization rows are keyed by the institution code, Practitioner rows by the licence number (执业证书编码),
Location and HealthcareService rows by their institution's code and their code there (rhip.registries.places);
the columns are :data:`COLUMNS`. A file is read whole (at most :data:`MAX_BYTES`, :data:`MAX_ROWS` rows), as
UTF-8 with or without a byte-order mark. Each row creates or updates one resource through the FHIR service
(a :class:`~rhip.registries.fhir_port.FhirCall`, as whoever acts) and gets its own result: created,
updated, or refused with the reason. A file that cannot be read at all is one :class:`FileProblem`.

Rows are applied in file order, so a parent institution listed before its children can be their ``parent``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rhip.registries.fhir_port import FhirCall, FhirRefused, matches, search_all
from rhip.registries.identifiers import LOCATION_PREFIX, SERVICE_PREFIX
from rhip.registries.places import (
    LOCATION_COLUMNS,
    LOCATION_REQUIRED,
    SERVICE_COLUMNS,
    SERVICE_REQUIRED,
    apply_location,
    apply_service,
    check_location,
    check_service,
    location_code,
    location_fields,
    service_fields,
)
from rhip.registries.records import (
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
    identifier,
    org_fields,
    practitioner_fields,
    reference_id,
    role_fields,
)

MAX_BYTES = 1024 * 1024
MAX_ROWS = 2000
EXPORT_LIMIT = 100_000
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Organization": (ORGANIZATION_COLUMNS, ORGANIZATION_REQUIRED),
    "Practitioner": (PRACTITIONER_COLUMNS, PRACTITIONER_REQUIRED),
    "Location": (LOCATION_COLUMNS, LOCATION_REQUIRED),
    "HealthcareService": (SERVICE_COLUMNS, SERVICE_REQUIRED),
}
"""Resource type → (its columns, those required)."""


class FileProblem(ValueError):
    """A file that cannot be imported at all: a message key (REASONS) and what to put in it."""

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


def columns_of(resource_type: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The documented columns of a resource type's CSV and those required; ValueError for other types."""
    found = COLUMNS.get(resource_type)
    if found is None:
        raise ValueError(f"no CSV columns for {resource_type}: one of {', '.join(COLUMNS)}")
    return found


def read_rows(data: bytes, resource_type: str) -> list[dict[str, str]]:
    """The rows of a CSV file (column names trimmed, lower-cased); raises :class:`FileProblem`."""
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
        columns, required = columns_of(resource_type)
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


def import_rows(fhir: FhirCall, resource_type: str, rows: Iterable[Mapping[str, str]]) -> list[RowResult]:
    """Create or update one resource per row through ``fhir``; a result per row."""
    columns_of(resource_type)  # refuses a type without CSV columns before any row is written
    importer = _IMPORTERS[resource_type]
    results = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        key = str(row.get("licence" if resource_type == "Practitioner" else "code", "")).strip()
        try:
            results.append(importer(fhir, line, row))
        except RowError as error:
            why = error.detail or error.field
            results.append(RowResult(line, key, "refused", reason_key=error.key, reason=why))
        except FhirRefused as error:
            results.append(RowResult(line, key, "refused", reason_key=error.key, reason=error.detail))
    return results


def _find(fhir: FhirCall, rtype: str, system: str, value: str) -> dict[str, Any] | None:
    found = matches(fhir("GET", rtype, [("identifier", f"{system}|{value}"), ("_count", "2")]))
    if len(found) > 1:
        raise RowError("dir.err.ambiguous", "identifier")
    return found[0] if found else None


def _organization(fhir: FhirCall, line: int, row: Mapping[str, str]) -> RowResult:
    fields = check_org(row)
    existing = _find(fhir, "Organization", INSTITUTION_CODE, fields["code"])
    new_id = f"org-{fields['code']}"
    if existing is None and not FHIR_ID.match(new_id):
        raise RowError("dir.err.code", "code")
    parent = _named(fhir, "Organization", INSTITUTION_CODE, fields["parent"], "parent", "dir.err.parent")
    org = apply_org(existing, fields, new_id, parent)
    return _save(fhir, line, fields["code"], existing, org, new_id)


def _practitioner(fhir: FhirCall, line: int, row: Mapping[str, str]) -> RowResult:
    fields = check_practitioner(row)
    code = fields["institution_code"]
    organization = _named(
        fhir, "Organization", INSTITUTION_CODE, code, "institution_code", "dir.err.no_institution"
    )
    existing = _find(fhir, "Practitioner", PRACTITIONER_LICENCE, fields["licence"])
    res = apply_practitioner(existing, fields, organization)
    if existing is not None:
        saved = fhir("PUT", f"Practitioner/{existing['id']}", body=res) or {}
    else:
        saved = fhir("POST", "Practitioner", body=res) or {}
    pid = str(saved.get("id") or (existing or {}).get("id", ""))
    if organization and pid:
        _role(fhir, pid, organization, fields)
    outcome = "updated" if existing is not None else "created"
    return RowResult(line, fields["licence"], outcome, f"Practitioner/{pid}")


def _role(fhir: FhirCall, practitioner: str, organization: str, fields: Mapping[str, str]) -> None:
    """Create (or bring up to date) the PractitionerRole tying the practitioner to the institution."""
    query = [
        ("practitioner", f"Practitioner/{practitioner}"),
        ("organization", f"Organization/{organization}"),
        ("_count", "1"),
    ]
    found = matches(fhir("GET", "PractitionerRole", query))
    post = (fields["department"], fields["role_start"], fields["role_end"])
    if found and not any(post):
        return
    role = apply_role(found[0] if found else None, practitioner, organization, *post)
    if found:
        fhir("PUT", f"PractitionerRole/{found[0]['id']}", body=role)
    else:
        fhir("POST", "PractitionerRole", body=role)


def _named(fhir: FhirCall, rtype: str, system: str, code: str, column: str, reason: str) -> str | None:
    """The id of the resource a cell names by its code (None for an empty cell); RowError when none has it."""
    if not code:
        return None
    found = _find(fhir, rtype, system, code)
    if found is None:
        raise RowError(reason, column)
    return str(found["id"])


def _institution(fhir: FhirCall, code: str) -> str:
    found = _named(fhir, "Organization", INSTITUTION_CODE, code, "institution_code", "dir.err.no_institution")
    assert found is not None  # the code is required: check_location / check_service refused an empty one
    return found


def _save(
    fhir: FhirCall, line: int, key: str, existing: Mapping[str, Any] | None, res: dict[str, Any], new_id: str
) -> RowResult:
    """PUT the resource under its id; a new one under ``new_id`` when that is a valid id no other resource
    has (a Location ``loc-H1-01`` the synthetic region made without a code), else POST."""
    rtype = res["resourceType"]
    if existing is None:
        res.pop("id", None)
        if FHIR_ID.match(new_id) and not _taken(fhir, rtype, new_id):
            res["id"] = new_id
    if "id" in res:
        saved = fhir("PUT", f"{rtype}/{res['id']}", body=res) or {}
    else:
        saved = fhir("POST", rtype, body=res) or {}
    outcome = "updated" if existing is not None else "created"
    return RowResult(line, key, outcome, f"{rtype}/{saved.get('id', res.get('id', ''))}")


def _taken(fhir: FhirCall, rtype: str, rid: str) -> bool:
    """Whether a resource (current or not yet deleted) has the id."""
    try:
        fhir("GET", f"{rtype}/{rid}")
    except FhirRefused as error:
        if error.status in (404, 410):
            return False
        raise
    return True


def _location(fhir: FhirCall, line: int, row: Mapping[str, str]) -> RowResult:
    fields = check_location(row)
    institution = fields["institution_code"]
    organization = _institution(fhir, institution)
    system = LOCATION_PREFIX + institution
    existing = _find(fhir, "Location", system, fields["code"])
    parent = _named(fhir, "Location", system, fields["partof"], "partof", "dir.err.no_location")
    loc = apply_location(existing, fields, organization, parent)
    return _save(fhir, line, fields["code"], existing, loc, f"loc-{institution}-{fields['code']}")


def _service(fhir: FhirCall, line: int, row: Mapping[str, str]) -> RowResult:
    fields = check_service(row)
    institution = fields["institution_code"]
    organization = _institution(fhir, institution)
    existing = _find(fhir, "HealthcareService", SERVICE_PREFIX + institution, fields["code"])
    location = _named(
        fhir, "Location", LOCATION_PREFIX + institution, fields["location"], "location", "dir.err.no_location"
    )
    service = apply_service(existing, fields, organization, location)
    return _save(fhir, line, fields["code"], existing, service, f"hs-{institution}-{fields['code']}")


_IMPORTERS: dict[str, Callable[[FhirCall, int, Mapping[str, str]], RowResult]] = {
    "Organization": _organization,
    "Practitioner": _practitioner,
    "Location": _location,
    "HealthcareService": _service,
}


def rows_of(
    fhir: FhirCall, resource_type: str, resources: Iterable[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """The CSV rows of resources (references to other registry resources given by their codes)."""
    if resource_type == "Practitioner":
        return _practitioner_rows(fhir, resources)
    if resource_type in ("Location", "HealthcareService"):
        return _place_rows(fhir, resource_type, resources)
    rows = [org_fields(r) for r in resources]
    known = {row["id"]: row["code"] for row in rows}
    for row in rows:
        parent = row.pop("parent_id", "")
        if parent and parent not in known:
            found = fhir("GET", f"Organization/{parent}") if FHIR_ID.match(parent) else None
            known[parent] = identifier(found or {}, INSTITUTION_CODE)
        row["parent"] = known.get(parent, "") if parent else ""
    return rows


def _practitioner_rows(fhir: FhirCall, resources: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Practitioner rows with their post: the first active PractitionerRole (by id), its institution by code."""
    people = list(resources)
    posts: dict[str, dict[str, str]] = {}
    roles = search_all(
        fhir, "PractitionerRole", [("active", "true"), ("_sort", "_id"), ("_count", "500")], EXPORT_LIMIT
    )
    for role in roles:
        who = reference_id(role.get("practitioner"), "Practitioner")
        if who and who not in posts:
            posts[who] = role_fields(role)
    codes: dict[str, str] = {}
    rows = []
    for res in people:
        row = practitioner_fields(res)
        post = dict(posts.get(row["id"], {}))
        org = post.pop("organization_id", "")
        if org and org not in codes:
            found = fhir("GET", f"Organization/{org}") if FHIR_ID.match(org) else None
            codes[org] = identifier(found or {}, INSTITUTION_CODE)
        row.update(post, institution_code=codes.get(org, ""))
        rows.append(row)
    return rows


def _place_rows(
    fhir: FhirCall, resource_type: str, resources: Iterable[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """Location or HealthcareService rows, the Location they name given by its code."""
    codes: dict[str, str] = {}

    def code_of(location_id: str) -> str:
        if location_id and location_id not in codes:
            found = fhir("GET", f"Location/{location_id}") if FHIR_ID.match(location_id) else None
            codes[location_id] = location_code(found or {})
        return codes.get(location_id, "")

    rows = []
    for res in resources:
        if resource_type == "Location":
            row = location_fields(res)
            row["partof"] = code_of(row.pop("partof_id"))
        else:
            row = service_fields(res)
            row["location"] = code_of(row.pop("location_id"))
        rows.append(row)
    return rows


def export_rows(fhir: FhirCall, resource_type: str, query: list[tuple[str, str]] | None = None) -> bytes:
    """Every resource of a type a search finds (all by default), as a CSV file of :data:`COLUMNS`."""
    columns = columns_of(resource_type)[0]
    found = search_all(fhir, resource_type, [*(query or []), ("_count", "500")], EXPORT_LIMIT)
    return export_csv(rows_of(fhir, resource_type, found), columns)


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
