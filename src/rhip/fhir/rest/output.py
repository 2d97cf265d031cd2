"""Building response Bundles from stored JSON, and the ``_summary`` / ``_elements`` views.

Search and history Bundles are assembled by splicing each resource's stored JSON bytes into the Bundle
envelope, so a page of fifty resources is never parsed and re-serialised unless the client asked for a
subset of elements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from rhip.core.clock import fhir_instant
from rhip.core.errors import Issue
from rhip.core.ids import new_resource_id
from rhip.fhir.definitions import StructureTable
from rhip.fhir.repository import HistoryPage, SearchPage, StoredResource
from rhip.fhir.rest.outcome import outcome

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


class View:
    """Which part of each resource to return (``_summary`` / ``_elements``)."""

    def __init__(self, table: StructureTable, summary: str | None, elements: Sequence[str] | None) -> None:
        self.table = table
        self.summary = None if summary == "false" else summary
        self.elements = frozenset(elements) if elements else None

    @property
    def full(self) -> bool:
        """Whether resources are returned whole."""
        return self.summary is None and self.elements is None

    def apply(self, content: bytes, resource_type: str) -> bytes:
        """The JSON of the chosen subset of a stored resource."""
        if self.full:
            return content
        resource: dict[str, Any] = orjson.loads(content)
        return orjson.dumps(self.subset(resource, resource_type))

    def subset(self, resource: dict[str, Any], resource_type: str) -> dict[str, Any]:
        """Keep the elements the view asks for, plus id, meta and mandatory elements; tag the result."""
        typedef = self.table.type(resource_type)
        keep: dict[str, Any] = {}
        for key, value in resource.items():
            if key in ("resourceType", "id", "meta"):
                keep[key] = value
                continue
            name = key[1:] if key.startswith("_") else key
            jk = typedef.keys.get(name)
            element = jk.element if jk else None
            mandatory = element is not None and element.min > 0
            if self.summary == "data":
                wanted = key != "text"
            elif self.summary == "text":
                wanted = key == "text" or mandatory
            elif self.summary == "true":
                wanted = mandatory or (element is not None and element.summary)
            else:
                wanted = mandatory or (element is not None and element.name in (self.elements or ()))
            if wanted:
                keep[key] = value
        meta = dict(keep.get("meta") or {})
        tags = list(meta.get("tag") or [])
        if SUBSETTED not in tags:
            tags.append(SUBSETTED)
        meta["tag"] = tags
        keep["meta"] = meta
        return keep


def _bundle(head: dict[str, Any], entries: Iterable[bytes]) -> bytes:
    body = b",".join(entries)
    envelope = orjson.dumps(head)
    if not body:
        return envelope
    return envelope[:-1] + b',"entry":[' + body + b"]}"


def _entry(full_url: str, content: bytes | None, extra: dict[str, Any]) -> bytes:
    parts = [b'{"fullUrl":', orjson.dumps(full_url)]
    if content is not None:
        parts += [b',"resource":', content]
    for key, value in extra.items():
        parts += [b',"', key.encode(), b'":', orjson.dumps(value)]
    parts.append(b"}")
    return b"".join(parts)


def links(
    base: str, path: str, canonical: Sequence[tuple[str, str]], page: SearchPage | HistoryPage
) -> list[dict[str, str]]:
    """The self / next / previous links of a page, keeping the query's parameters."""
    query = urlencode(list(canonical))
    url = f"{base}/{path}" if path else base
    out = [{"relation": "self", "url": f"{url}?{query}" if query else url}]
    join = "&" if query else ""
    if page.next_page:
        out.append(
            {"relation": "next", "url": f"{url}?{query}{join}{urlencode([('_page', page.next_page)])}"}
        )
    previous = getattr(page, "previous_page", None)
    if previous:
        out.append({"relation": "previous", "url": f"{url}?{query}{join}{urlencode([('_page', previous)])}"})
    return out


def searchset(
    base: str,
    page: SearchPage,
    page_links: list[dict[str, str]],
    view: View,
    now: str,
    extra_warnings: Sequence[Issue] = (),
) -> bytes:
    """A searchset Bundle: matches, includes, and an outcome entry when there are warnings."""
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": new_resource_id(),
        "meta": {"lastUpdated": now},
        "type": "searchset",
    }
    if page.total is not None:
        head["total"] = page.total
    head["link"] = page_links
    entries: list[bytes] = []
    for stored in page.matches:
        if stored.content is not None:
            entries.append(
                _entry(
                    f"{base}/{stored.resource_type}/{stored.id}",
                    view.apply(stored.content, stored.resource_type),
                    {"search": {"mode": "match"}},
                )
            )
    for stored in page.included:
        if stored.content is not None:
            entries.append(
                _entry(
                    f"{base}/{stored.resource_type}/{stored.id}",
                    view.apply(stored.content, stored.resource_type),
                    {"search": {"mode": "include"}},
                )
            )
    warnings = [*page.warnings, *extra_warnings]
    if warnings:
        entries.append(
            _entry(
                f"urn:uuid:{new_resource_id()}",
                orjson.dumps(outcome(warnings)),
                {"search": {"mode": "outcome"}},
            )
        )
    return _bundle(head, entries)


def history_bundle(base: str, page: HistoryPage, page_links: list[dict[str, str]], now: str) -> bytes:
    """A history Bundle, newest version first; deletions carry only their request and response."""
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": new_resource_id(),
        "meta": {"lastUpdated": now},
        "type": "history",
    }
    if page.total is not None:
        head["total"] = page.total
    head["link"] = page_links
    entries = []
    for v in page.entries:
        url = f"{v.resource_type}/{v.id}"
        method = v.method or ("DELETE" if v.deleted else "PUT")
        status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(method, "200 OK")
        request = {"method": method, "url": url if method != "POST" else v.resource_type}
        response = {"status": status, "etag": v.etag, "lastModified": v.last_updated}
        entries.append(_entry(f"{base}/{url}", v.content, {"request": request, "response": response}))
    return _bundle(head, entries)


def now_instant() -> str:
    """The current instant for Bundle.meta.lastUpdated."""
    return fhir_instant(datetime.now(UTC))


def stored_json(stored: StoredResource) -> bytes:
    """The stored JSON of a version (empty object for a deletion)."""
    return stored.content if stored.content is not None else b"{}"
