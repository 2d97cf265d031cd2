"""The FHIR RESTful interactions: read, vread, create, update, patch, delete (plain and conditional),
search, history and compartment search, on any :class:`FhirRepository`.

Every interaction takes the repository to act on, so a transaction Bundle runs the very same code on the
repository of its unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch

from rhip.core.errors import (
    InvalidRequest,
    Issue,
    MultipleMatches,
    ResourceNotFound,
    UnprocessablePatch,
    VersionConflict,
)
from rhip.fhir.definitions import StructureTable
from rhip.fhir.repository import FhirRepository, HistoryRequest, SearchPage, StoredResource
from rhip.fhir.rest import output
from rhip.fhir.rest.extensions import Extensions
from rhip.fhir.rest.http import (
    PATCH_TYPES,
    Preferences,
    form_params,
    instant_param,
    json_body,
    modified_since,
    preferences,
    resource_body,
    resource_headers,
    version_from_etag,
)
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.outcome import dumps, information
from rhip.fhir.search.parse import SearchParser
from rhip.fhir.search.query import SearchQuery


@dataclass(frozen=True)
class RestSettings:
    """Behaviour switches of the REST API."""

    default_count: int = 20
    max_count: int = 1000
    allow_multiple_delete: bool = False
    max_bundle_entries: int = 10_000


class Interactions:
    """Implements each interaction on a repository passed per call."""

    def __init__(
        self, table: StructureTable, parser: SearchParser, settings: RestSettings, zone: tzinfo
    ) -> None:
        self.table = table
        self.parser = parser
        self.settings = settings
        self.zone = zone

    # -- helpers --------------------------------------------------------------------------------
    def check_type(self, resource_type: str) -> None:
        """400 unless ``resource_type`` is a concrete R4 resource type."""
        if not self.table.is_resource_type(resource_type):
            raise ResourceNotFound(f"Unknown resource type '{resource_type}'")

    def respond(
        self, req: FhirRequest, stored: StoredResource, status: int, prefs: Preferences | None = None
    ) -> FhirResponse:
        """A response carrying a stored version as the Prefer header asks."""
        prefs = prefs or preferences(req)
        headers = resource_headers(req.base_url, stored)
        if prefs.return_ == "minimal" or stored.content is None:
            return FhirResponse(status, None, headers, stored=stored)
        if prefs.return_ == "OperationOutcome":
            text = f"{stored.resource_type}/{stored.id} version {stored.version} stored"
            return FhirResponse(status, dumps(information(text)), headers, stored=stored)
        return FhirResponse(status, stored.content, headers, stored=stored)

    def criteria(self, resource_type: str, text: str, strict: bool = True) -> SearchQuery:
        """Parse conditional criteria (``identifier=x&birthdate=y``); unknown parameters are errors."""
        pairs = parse_qsl(text.lstrip("?"), keep_blank_values=True)
        if not pairs:
            raise InvalidRequest("Conditional criteria are empty")
        query = self.parser.parse(resource_type, pairs, strict=strict)
        if not query.filters:
            raise InvalidRequest(f"Conditional criteria '{text}' select nothing")
        query.count = 2
        return query

    def matches(self, repo: FhirRepository, query: SearchQuery) -> list[StoredResource]:
        """Up to two matches of a conditional query (two is enough to tell 'several')."""
        query.count = 2
        query.sort = []
        query.includes, query.revincludes = [], []
        return repo.search(query).matches

    # -- read -------------------------------------------------------------------------------------
    def read(self, repo: FhirRepository, req: FhirRequest, rtype: str, rid: str) -> FhirResponse:
        """GET [type]/[id], honouring If-None-Match and If-Modified-Since."""
        self.check_type(rtype)
        stored = repo.read(rtype, rid)
        inm = req.header("if-none-match")
        if inm is not None and version_from_etag(inm, "If-None-Match") == stored.version:
            return FhirResponse(304, None, resource_headers(req.base_url, stored))
        if not modified_since(stored, req.header("if-modified-since")):
            return FhirResponse(304, None, resource_headers(req.base_url, stored))
        return self.view_response(req, stored, 200)

    def vread(self, repo: FhirRepository, req: FhirRequest, rtype: str, rid: str, vid: str) -> FhirResponse:
        """GET [type]/[id]/_history/[vid]."""
        self.check_type(rtype)
        try:
            version = int(vid)
            if not 0 < version < 2**31:
                raise ValueError(vid)
        except ValueError as exc:
            raise ResourceNotFound(f"{rtype}/{rid} has no version '{vid}'") from exc
        return self.view_response(req, repo.vread(rtype, rid, version), 200)

    def view_response(self, req: FhirRequest, stored: StoredResource, status: int) -> FhirResponse:
        """A read response, applying ``_summary`` / ``_elements`` when asked."""
        summary = next((v for k, v in req.query if k == "_summary"), None)
        elements = next((v for k, v in req.query if k == "_elements"), None)
        headers = resource_headers(req.base_url, stored)
        headers["Content-Location"] = headers.pop("Location")
        if (summary in (None, "false") and not elements) or stored.content is None:
            return FhirResponse(status, stored.content, headers, stored=stored)
        view = output.View(self.table, summary, elements.split(",") if elements else None)
        return FhirResponse(status, view.apply(stored.content, stored.resource_type), headers, stored=stored)

    # -- create / update / delete -----------------------------------------------------------------
    def create(
        self,
        repo: FhirRepository,
        req: FhirRequest,
        rtype: str,
        assigned_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> FhirResponse:
        """POST [type], with ``If-None-Exist`` for conditional create."""
        self.check_type(rtype)
        resource = body if body is not None else resource_body(req)
        if resource.get("resourceType") != rtype:
            raise InvalidRequest(
                f"The body is a {resource.get('resourceType')}, not a {rtype}", expression=["resourceType"]
            )
        resource = {k: v for k, v in resource.items() if k != "id"}  # the server assigns ids on create
        condition = req.header("if-none-exist")
        with repo.transaction() as tx:
            if condition:
                query = self.criteria(rtype, condition)
                tx.lock(f"{rtype}?{condition}")
                found = self.matches(tx, query)
                if len(found) > 1:
                    raise MultipleMatches(f"If-None-Exist '{condition}' matches more than one {rtype}")
                if found:
                    return self.respond(req, found[0], 200)
            stored = tx.create(resource, id=assigned_id)
        return self.respond(req, stored, 201)

    def update(
        self, repo: FhirRepository, req: FhirRequest, rtype: str, rid: str, body: dict[str, Any] | None = None
    ) -> FhirResponse:
        """PUT [type]/[id] (update, or create with a client-chosen id), with ``If-Match``."""
        self.check_type(rtype)
        resource = body if body is not None else resource_body(req)
        if resource.get("resourceType") != rtype:
            raise InvalidRequest(
                f"The body is a {resource.get('resourceType')}, not a {rtype}", expression=["resourceType"]
            )
        if "id" not in resource:
            raise InvalidRequest("The resource in an update must carry its id", expression=[f"{rtype}.id"])
        if resource["id"] != rid:
            raise InvalidRequest(
                f"The id in the body ({resource['id']!r}) does not match the URL ({rid!r})",
                expression=[f"{rtype}.id"],
            )
        if_match = version_from_etag(req.header("if-match"), "If-Match")
        stored, created = repo.update(rtype, rid, resource, if_match=if_match)
        return self.respond(req, stored, 201 if created else 200)

    def conditional_update(
        self,
        repo: FhirRepository,
        req: FhirRequest,
        rtype: str,
        criteria: str,
        body: dict[str, Any] | None = None,
    ) -> FhirResponse:
        """PUT [type]?criteria: update the single match, or create when there is none."""
        self.check_type(rtype)
        resource = body if body is not None else resource_body(req)
        if resource.get("resourceType") != rtype:
            raise InvalidRequest(
                f"The body is a {resource.get('resourceType')}, not a {rtype}", expression=["resourceType"]
            )
        query = self.criteria(rtype, criteria)
        if_match = version_from_etag(req.header("if-match"), "If-Match")
        with repo.transaction() as tx:
            tx.lock(f"{rtype}?{criteria}")
            found = self.matches(tx, query)
            if len(found) > 1:
                raise MultipleMatches(f"Conditional update '{criteria}' matches more than one {rtype}")
            if found:
                target = found[0]
                if resource.get("id") not in (None, target.id):
                    raise InvalidRequest(
                        f"The id in the body does not match the resource the criteria select ({target.id})"
                    )
                stored, _ = tx.update(rtype, target.id, {**resource, "id": target.id}, if_match=if_match)
                return self.respond(req, stored, 200)
            rid = resource.get("id")
            if isinstance(rid, str):
                # No match: create with the client's id, but never overwrite another resource with it.
                stored = tx.create(resource, id=rid)
            else:
                stored = tx.create(resource)
        return self.respond(req, stored, 201)

    def delete(self, repo: FhirRepository, req: FhirRequest, rtype: str, rid: str) -> FhirResponse:
        """DELETE [type]/[id]: 204, also when the resource was not there (idempotent)."""
        self.check_type(rtype)
        deleted = repo.delete(rtype, rid)
        return self._deleted(req, [deleted] if deleted else [])

    def conditional_delete(
        self, repo: FhirRepository, req: FhirRequest, rtype: str, criteria: str
    ) -> FhirResponse:
        """DELETE [type]?criteria: one match (or several when allowed) is deleted."""
        self.check_type(rtype)
        with repo.transaction() as tx:
            found = self.delete_targets(tx, rtype, criteria)
            deleted = [d for s in found if (d := tx.delete(rtype, s.id)) is not None]
        return self._deleted(req, deleted)

    def delete_targets(self, repo: FhirRepository, rtype: str, criteria: str) -> list[StoredResource]:
        """What a conditional delete removes: one match, or every match when several may be deleted."""
        query = self.criteria(rtype, criteria)
        if self.settings.allow_multiple_delete:
            query.count = self.settings.max_count
            return repo.search(query).matches
        found = self.matches(repo, query)
        if len(found) > 1:
            raise MultipleMatches(f"Conditional delete '{criteria}' matches more than one {rtype}")
        return found

    def _deleted(self, req: FhirRequest, deleted: list[StoredResource]) -> FhirResponse:
        headers = {"ETag": deleted[0].etag} if len(deleted) == 1 else {}
        stored = deleted[0] if len(deleted) == 1 else None
        if preferences(req).return_ == "OperationOutcome":
            text = f"Deleted {len(deleted)} resource(s)" if deleted else "Nothing to delete"
            return FhirResponse(200, dumps(information(text)), headers, stored=stored)
        return FhirResponse(204, None, headers, stored=stored)

    def patch(
        self, repo: FhirRepository, req: FhirRequest, rtype: str, rid: str | None, criteria: str | None = None
    ) -> FhirResponse:
        """PATCH with a JSON Patch (RFC 6902) document, on an id or conditional criteria."""
        self.check_type(rtype)
        operations = json_body(req, PATCH_TYPES)
        if not isinstance(operations, list):
            raise InvalidRequest("A JSON Patch document is an array of operations")
        if_match = version_from_etag(req.header("if-match"), "If-Match")
        with repo.transaction() as tx:
            if rid is None:
                found = self.matches(tx, self.criteria(rtype, criteria or ""))
                if len(found) != 1:
                    if found:
                        raise MultipleMatches(f"Conditional patch '{criteria}' matches more than one {rtype}")
                    raise ResourceNotFound(f"Conditional patch '{criteria}' matches no {rtype}")
                current = found[0]
            else:
                current = tx.read(rtype, rid)
            if if_match is not None and if_match != current.version:
                raise VersionConflict(f"{rtype}/{current.id} is at version {current.version}, not {if_match}")
            try:
                patched = jsonpatch.apply_patch(current.resource(), operations)
            except (
                jsonpatch.JsonPatchException,
                jsonpatch.JsonPointerException,
                TypeError,
                ValueError,
            ) as exc:
                raise UnprocessablePatch(f"The patch cannot be applied: {exc}") from exc
            if (
                not isinstance(patched, dict)
                or patched.get("resourceType") != rtype
                or patched.get("id") != current.id
            ):
                raise UnprocessablePatch("A patch must not change resourceType or id")
            stored, _ = tx.update(rtype, current.id, patched, if_match=current.version)
        return self.respond(req, stored, 200)

    # -- search and history -----------------------------------------------------------------------
    def search(
        self,
        repo: FhirRepository,
        req: FhirRequest,
        rtype: str,
        post: bool = False,
        compartment: tuple[str, str] | None = None,
        extensions: Extensions | None = None,
    ) -> FhirResponse:
        """GET [type]?…, POST [type]/_search, GET Patient/[id]/[type]?…

        ``extensions``: search parameters that capabilities resolve to ids themselves (rhip.fhir.rest.extensions).
        """
        self.check_type(rtype)
        params = list(req.query) + (form_params(req) if post else [])
        rewritten = extensions.rewrite_search(rtype, params) if extensions is not None else None
        if rewritten is not None:
            params = rewritten.params
        prefs = preferences(req)
        query = self.parser.parse(rtype, params, strict=prefs.strict, compartment=compartment)
        canonical = query.canonical
        if rewritten is None:
            page = repo.search(query)
        else:
            canonical = rewritten.link_params(canonical)
            page = _nothing(query) if rewritten.empty else repo.search(query)
        path = f"{compartment[0]}/{compartment[1]}/{rtype}" if compartment else rtype
        page_links = output.links(req.base_url, path, canonical, page)
        view = output.View(self.table, query.summary, query.elements)
        return FhirResponse(200, output.searchset(req.base_url, page, page_links, view, output.now_instant()))

    def history(
        self, repo: FhirRepository, req: FhirRequest, rtype: str | None = None, rid: str | None = None
    ) -> FhirResponse:
        """_history at system, type or instance level with ``_since``, ``_at`` and ``_count``."""
        if rtype is not None:
            self.check_type(rtype)
        since = at = at_end = None
        count = self.settings.default_count
        page_token = None
        canonical: list[tuple[str, str]] = []
        for name, value in req.query:
            if name == "_since":
                since = instant_param(value, "_since")
            elif name == "_at":
                at = instant_param(value, "_at")
                at_end = instant_param(value, "_at", end=True)
            elif name == "_count":
                try:
                    count = max(0, min(int(value), self.settings.max_count))
                except ValueError as exc:
                    raise InvalidRequest("_count must be a whole number", expression=["_count"]) from exc
            elif name == "_page":
                page_token = value
                continue
            elif name not in ("_format", "_pretty"):
                raise InvalidRequest(f"Parameter '{name}' is not supported on _history")
            canonical.append((name, value))
        page = repo.history(
            HistoryRequest(rtype, rid, since, at_start_us=at, at_end_us=at_end, count=count, page=page_token)
        )
        path = "/".join(p for p in (rtype, rid, "_history") if p)
        return FhirResponse(
            200,
            output.history_bundle(
                req.base_url, page, output.links(req.base_url, path, canonical, page), output.now_instant()
            ),
        )

    def now(self) -> datetime:
        """The current time in the platform zone."""
        return datetime.now(UTC).astimezone(self.zone)


def _nothing(query: SearchQuery) -> SearchPage:
    """The page of a search known to match nothing (extension parameters resolved to no id)."""
    warnings = [
        Issue("warning", "not-supported", f"Parameter '{n}' was ignored: {why}") for n, why in query.ignored
    ]
    return SearchPage([], total=None if query.total == "none" else 0, warnings=warnings)
