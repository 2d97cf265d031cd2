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
from rhip.fhir.definitions import PRIMITIVE_TYPES, StructureTable
from rhip.fhir.repository import HistoryPage, SearchPage, StoredResource
from rhip.fhir.rest.outcome import outcome

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


class View:
    """Which part of each resource to return (``_summary`` / ``_elements``).

    - ``_summary=true``: the elements marked isSummary in the R4 definitions, at every level (a Patient's
      ``contact`` goes; inside ``name`` everything stays, since every HumanName element is a summary
      element; inside an Observation's ``component`` only ``code`` and ``value[x]``). Mandatory and
      modifier elements are kept wherever their parent is kept. Extensions are not summary elements:
      ``extension`` and the ``_x`` objects of primitives are dropped; a kept ``modifierExtension`` stays
      whole. Resources inside a kept element (``Bundle.entry.resource``) are summarised and tagged too.
    - ``_summary=text``: ``text``, ``id``, ``meta`` and the top-level mandatory elements.
    - ``_summary=data``: everything but ``text``.
    - ``_elements``: the listed top-level elements (by name, ``value`` or ``valueQuantity``), plus the
      top-level mandatory and modifier elements (the spec asks servers for the mandatory ones and clients
      to list the modifier ones; returning them keeps a subset from being misread). Nested elements are
      not filtered, and the list does not apply to included resources.

    ``id`` and ``meta`` are always kept, and ``meta.tag`` carries SUBSETTED once.
    """

    def __init__(self, table: StructureTable, summary: str | None, elements: Sequence[str] | None) -> None:
        self.table = table
        self.summary = None if summary == "false" else summary
        names = frozenset(e.strip() for e in elements or () if e.strip())
        self.elements = names or None

    @property
    def full(self) -> bool:
        """Whether resources are returned whole."""
        return self.summary is None and self.elements is None

    def for_included(self) -> View:
        """The view of ``_include``/``_revinclude`` resources: ``_elements`` does not apply to them."""
        if self.elements is None:
            return self
        return View(self.table, self.summary, None)

    def apply(self, content: bytes, resource_type: str) -> bytes:
        """The JSON of the chosen subset of a stored resource."""
        if self.full:
            return content
        resource: dict[str, Any] = orjson.loads(content)
        return orjson.dumps(self.subset(resource, resource_type))

    def subset(self, resource: dict[str, Any], resource_type: str) -> dict[str, Any]:
        """Keep the elements the view asks for, plus id, meta and mandatory elements; tag the result."""
        if self.summary == "true":
            return self._summary_resource(resource, resource_type)
        typedef = self.table.type(resource_type)
        keep: dict[str, Any] = {}
        for key, value in resource.items():
            if key in ("resourceType", "id", "meta"):
                keep[key] = value
                continue
            name = key[1:] if key.startswith("_") else key
            jk = typedef.keys.get(name)
            if jk is None:
                continue
            element = jk.element
            mandatory = element.min > 0
            if self.summary == "data":
                wanted = key != "text"
            elif self.summary == "text":
                wanted = key == "text" or mandatory
            else:
                listed = self.elements or frozenset()
                wanted = mandatory or element.modifier or element.name in listed or name in listed
            if wanted:
                keep[key] = value
        return _tagged(keep)

    def _summary_resource(self, resource: dict[str, Any], resource_type: str) -> dict[str, Any]:
        if not self.table.is_resource_type(resource_type):
            return resource
        keep = self._summary_object(resource, resource_type)
        for key in ("id", "meta"):  # meta stays whole: versionId, lastUpdated, security labels, tags
            if key in resource:
                keep[key] = resource[key]
        return _tagged({"resourceType": resource_type, **keep})

    def _summary_object(self, value: dict[str, Any], type_name: str) -> dict[str, Any]:
        typedef = self.table.type(type_name)
        keep: dict[str, Any] = {}
        for key, item in value.items():
            jk = typedef.keys.get(key)  # "_x" (a primitive's id and extensions) is no element: dropped
            if jk is None:
                continue
            element = jk.element
            if not (element.summary or element.min > 0 or element.modifier):
                continue
            kept = self._summary_value(item, jk.type)
            if kept is not None:
                keep[key] = kept
        return keep

    def _summary_value(self, value: Any, type_name: str) -> Any:
        """The summary of one element's value (arrays item by item); None when nothing is left."""
        if isinstance(value, list):
            items = [kept for v in value if (kept := self._summary_value(v, type_name)) is not None]
            return items or None
        if not isinstance(value, dict) or type_name in PRIMITIVE_TYPES or type_name == "Extension":
            return value  # extensions are kept whole (modifierExtension) or not at all
        if type_name == "Resource" or self.table.is_resource_type(type_name):
            rtype = value.get("resourceType")
            return self._summary_resource(value, rtype) if isinstance(rtype, str) else value
        if not self.table.has_type(type_name):
            return value
        return self._summary_object(value, type_name) or None


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` with the SUBSETTED tag in ``meta.tag`` (once) and ``meta`` placed after ``id``."""
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if not _is_subsetted(t)]
    tags.append(SUBSETTED)
    meta["tag"] = tags
    out: dict[str, Any] = {}
    for key in ("resourceType", "id"):
        if key in resource:
            out[key] = resource[key]
    out["meta"] = meta
    out.update((k, v) for k, v in resource.items() if k not in out)
    return out


def _is_subsetted(tag: Any) -> bool:
    return (
        isinstance(tag, dict) and tag.get("system") == SUBSETTED["system"] and tag.get("code") == "SUBSETTED"
    )


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
    included_view = view.for_included()
    for stored in page.included:
        if stored.content is not None:
            entries.append(
                _entry(
                    f"{base}/{stored.resource_type}/{stored.id}",
                    included_view.apply(stored.content, stored.resource_type),
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
