"""Bulk import and export of FHIR resources (NDJSON and Bundles), on any FhirRepository.

Import keeps the ids it is given (so references between files hold), commits in batches, and rejects a
bad resource without losing the rest of its batch: a resource is validated before it joins the batch, and
a batch that the database refuses when it commits is written again one resource per transaction, so that
only the resource at fault is rejected (with the database's reason) and the import goes on.
Transaction and batch Bundles go through the FHIR service exactly as if posted to ``/fhir``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from rhip.core.errors import RhipError, StorageUnavailable
from rhip.core.ids import is_valid_fhir_id
from rhip.fhir.repository import FhirRepository, StoredResource
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.rest.service import FhirService
from rhip.fhir.search.parse import SearchParser

IMPORTABLE_SUFFIXES = (".ndjson", ".json", ".jsonl")


@dataclass(frozen=True)
class Rejection:
    """One resource that was not imported, and why (no resource content: it may be personal data)."""

    source: str
    line: int
    resource_type: str
    code: str
    reason: str


@dataclass
class ImportSummary:
    """What an import did."""

    imported: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejection] = field(default_factory=list)
    files: int = 0

    @property
    def total_imported(self) -> int:
        """Resources stored."""
        return sum(self.imported.values())


def importable_files(path: Path) -> list[Path]:
    """The files to import: the file itself, or every NDJSON/JSON file below a folder, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in IMPORTABLE_SUFFIXES)


class BulkImporter:
    """Imports files into a repository through the FHIR service."""

    def __init__(self, service: FhirService, repository: FhirRepository, batch_size: int = 500) -> None:
        self.service = service
        self.repository = repository
        self.batch_size = batch_size

    def import_path(self, path: Path, progress: Callable[[int], None] | None = None) -> ImportSummary:
        """Import a file or a folder; ``progress`` is called with bytes read."""
        summary = ImportSummary()
        for file in importable_files(path):
            summary.files += 1
            with file.open("rb") as fh:
                self.import_stream(fh, str(file), summary, progress)
        return summary

    def import_stream(
        self,
        fh: IO[bytes],
        source: str,
        summary: ImportSummary,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Import one NDJSON stream or one JSON document (a resource or a Bundle)."""
        first = fh.read(1)
        fh.seek(0)
        text_start = first.lstrip()
        if source.endswith(".json") and text_start in (b"{", b""):
            data = fh.read()
            if progress:
                progress(len(data))
            self._import_items([(1, data)], source, summary)
            return
        batch: list[tuple[int, bytes]] = []
        for number, line in enumerate(fh, start=1):
            if progress:
                progress(len(line))
            if line.strip():
                batch.append((number, line))
            if len(batch) >= self.batch_size:
                self._import_items(batch, source, summary)
                batch = []
        if batch:
            self._import_items(batch, source, summary)

    def _import_items(self, items: list[tuple[int, bytes]], source: str, summary: ImportSummary) -> None:
        resources: list[tuple[int, dict[str, Any]]] = []
        for line, raw in items:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                summary.rejected.append(
                    Rejection(source, line, "?", "RHIP-FHIR-0001", f"not valid JSON: {exc.msg}")
                )
                continue
            if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
                summary.rejected.append(
                    Rejection(source, line, "?", "RHIP-FHIR-0001", "not a FHIR resource (no resourceType)")
                )
                continue
            if value["resourceType"] == "Bundle" and value.get("type") in ("transaction", "batch"):
                self._bundle(value, source, line, summary)
            elif value["resourceType"] == "Bundle" and value.get("type") in (
                "collection",
                "searchset",
                "document",
            ):
                for entry in value.get("entry", []):
                    if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                        resources.append((line, entry["resource"]))
            else:
                resources.append((line, value))
        for start in range(0, len(resources), self.batch_size):
            self._store(resources[start : start + self.batch_size], source, summary)

    def _store(
        self, resources: list[tuple[int, dict[str, Any]]], source: str, summary: ImportSummary
    ) -> None:
        """Write a batch in one transaction; if it fails as a whole, find the culprits one by one."""
        try:
            imported, rejected = self._write(resources, source, probe=len(resources) > 1)
        except StorageUnavailable as error:
            # The database is unreachable or locked: retrying resource by resource would fail the same way.
            summary.rejected.extend(_failed(source, line, resource, error) for line, resource in resources)
            return
        except Exception as error:  # raised at commit (or by the database mid-batch): nothing was stored
            if len(resources) == 1:
                line, resource = resources[0]
                summary.rejected.append(_failed(source, line, resource, error))
                return
            for item in resources:
                self._store([item], source, summary)
            return
        summary.imported.update(imported)
        summary.rejected.extend(rejected)

    def _write(
        self, resources: list[tuple[int, dict[str, Any]]], source: str, probe: bool
    ) -> tuple[Counter[str], list[Rejection]]:
        """One transaction; what it stored and rejected counts only once it has committed.

        With ``probe``, resources whose ids the repository does not hold yet are written as creates with
        that id: a unit of work of creates checks their ids once when it flushes, so it validates and
        indexes the whole batch before taking the database's write lock (an update reads its current
        version first, and on SQLite that takes the lock for the rest of the batch), which lets several
        importing processes work side by side. A batch that then fails (an id created meanwhile, a deleted
        resource) is written again one resource at a time, as updates.
        """
        imported: Counter[str] = Counter()
        rejected: list[Rejection] = []
        new = self._absent(resources) if probe else set()
        with self.repository.transaction() as tx:
            for line, resource in resources:
                rtype = str(resource.get("resourceType"))
                try:
                    rid = resource.get("id")
                    if isinstance(rid, str) and (rtype, rid) in new:
                        new.discard((rtype, rid))  # a second version of it in this batch is an update
                        tx.create(resource, id=rid, put=True)
                    elif isinstance(rid, str):
                        tx.update(rtype, rid, resource)
                    else:
                        tx.create(resource)
                except RhipError as error:
                    first = error.issues()[0]
                    rejected.append(
                        Rejection(
                            source, line, rtype, error.code, _reason(first.diagnostics, first.expression)
                        )
                    )
                    continue
                imported[rtype] += 1
        return imported, rejected

    def _absent(self, resources: list[tuple[int, dict[str, Any]]]) -> set[tuple[str, str]]:
        """The (type, id) pairs of the batch that the repository does not hold: one search per type."""
        wanted: dict[str, set[str]] = {}
        for _line, resource in resources:
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(rtype, str) and isinstance(rid, str) and is_valid_fhir_id(rid):
                wanted.setdefault(rtype, set()).add(rid)
        absent: set[tuple[str, str]] = set()
        parser = self.service.interactions.parser
        for rtype, ids in wanted.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), parser.max_count):
                part = ordered[start : start + parser.max_count]
                try:
                    query = parser.parse(rtype, [("_id", ",".join(part)), ("_count", str(len(part)))])
                    found = {m.id for m in self.repository.search(query).matches}
                except RhipError:
                    break  # an unknown type: the writes refuse it with their own reason
                absent.update((rtype, rid) for rid in part if rid not in found)
        return absent

    def _bundle(self, bundle: dict[str, Any], source: str, line: int, summary: ImportSummary) -> None:
        request = FhirRequest(
            "POST",
            "",
            [],
            {"content-type": "application/fhir+json", "prefer": "return=minimal"},
            orjson.dumps(bundle),
            "",
        )
        response = self.service.handle(request)
        if response.status >= 400:
            body = orjson.loads(response.body or b"{}")
            issue = (body.get("issue") or [{}])[0]
            code = (issue.get("details") or {}).get("text", "RHIP-FHIR-0001")
            summary.rejected.append(
                Rejection(
                    source,
                    line,
                    "Bundle",
                    code,
                    _reason(issue.get("diagnostics", ""), issue.get("expression", ())),
                )
            )
            return
        result = orjson.loads(response.body or b"{}")
        for entry in result.get("entry", []):
            status = str((entry.get("response") or {}).get("status", ""))
            location = str((entry.get("response") or {}).get("location", ""))
            if status.startswith("2") and location:
                summary.imported[location.split("/", 1)[0]] += 1
            elif not status.startswith("2"):
                outcome = (entry.get("response") or {}).get("outcome") or {}
                issue = (outcome.get("issue") or [{}])[0]
                summary.rejected.append(
                    Rejection(source, line, "Bundle entry", status, _reason(issue.get("diagnostics", ""), ()))
                )


def _failed(source: str, line: int, resource: dict[str, Any], error: Exception) -> Rejection:
    """The rejection of a resource whose transaction failed (at commit, as a rule)."""
    rtype = str(resource.get("resourceType"))
    if isinstance(error, RhipError):
        first = error.issues()[0]
        return Rejection(source, line, rtype, error.code, _reason(first.diagnostics, first.expression))
    # A database error that the store did not translate. Its message may quote stored values (personal
    # data), so only the kinds of error are reported: SQLAlchemy's and the driver's (e.g. DataError,
    # StringDataRightTruncation).
    driver = getattr(error, "orig", None)
    kind = type(error).__name__ + (f", {type(driver).__name__}" if driver is not None else "")
    return Rejection(source, line, rtype, RhipError.code, f"the database refused to store it ({kind})")


def _reason(diagnostics: str, expression: Any) -> str:
    where = f" at {', '.join(expression)}" if expression else ""
    return f"{diagnostics}{where}"


def export_resources(
    repository: FhirRepository,
    parser: SearchParser,
    resource_types: list[str],
    since: str | None = None,
    page_size: int = 1000,
) -> Iterator[StoredResource]:
    """Every current resource of the given types (optionally changed since an instant), page by page."""
    for rtype in resource_types:
        params = [("_count", str(page_size))]
        if since:
            params.append(("_lastUpdated", f"ge{since}"))
        query = parser.parse(rtype, params)
        while True:
            page = repository.search(query)
            yield from page.matches
            if not page.next_page:
                break
            query.page = page.next_page
