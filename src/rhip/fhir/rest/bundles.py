"""Batch and transaction Bundles posted to the service base.

A transaction runs in one unit of work: ``urn:uuid`` full URLs get their ids first (conditional creates
may resolve to existing resources), conditional references (``Patient?identifier=…``) are resolved, every
reference is rewritten, and the entries run in the order the specification requires (DELETE, POST,
PUT/PATCH, GET/HEAD). Any failure rolls back everything and names the entry. A batch runs each entry on
its own and reports each outcome.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from rhip.core.errors import InvalidRequest, Issue, MultipleMatches, ResourceNotFound, RhipError, TooCostly
from rhip.core.ids import new_resource_id
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.http import resource_body
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.outcome import dumps, outcome_for_error
from rhip.fhir.rest.output import now_instant

if TYPE_CHECKING:
    from rhip.fhir.rest.service import FhirService

# The string after "reference": as an unrolled loop (runs of plain characters, then one escape at a time),
# which the regex engine scans several times faster than an alternation per character.
_REFERENCE = re.compile(rb'"reference":"([^"\\]*(?:\\.[^"\\]*)*)"')
T = TypeVar("T")
METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    422: "Unprocessable Entity",
}


@dataclass
class _Entry:
    index: int
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    resource: dict[str, Any] | None
    full_url: str | None
    rtype: str = ""
    rid: str | None = None
    assigned_id: str | None = None
    existing: Any = None  # a conditional create that matched
    targets: list[str] = field(default_factory=list)  # ids a conditional DELETE removes
    extra: dict[str, Any] = field(default_factory=dict)
    operation: bool = False  # request.url invokes an operation ($…): the service dispatches it


class BundleProcessor:
    """Processes batch and transaction Bundles through the service's interactions."""

    def __init__(self, service: FhirService) -> None:
        self.service = service

    def process(self, repo: FhirRepository, req: FhirRequest) -> FhirResponse:
        """POST [base] with a Bundle of type batch or transaction."""
        bundle = resource_body(req)
        if bundle.get("resourceType") != "Bundle":
            raise InvalidRequest("POST to the service base takes a Bundle", expression=["resourceType"])
        kind = bundle.get("type")
        # A capability may complete a transaction of a profile it handles (MHD ProvideDocumentBundle …).
        hook = self.service.extensions.bundle_hook(bundle) if kind == "transaction" else None
        sent = bundle
        if hook is not None:
            bundle = hook.prepare(bundle)
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list):
            raise InvalidRequest("Bundle.entry must be an array", expression=["Bundle.entry"])
        limit = self.service.interactions.settings.max_bundle_entries
        if len(raw_entries) > limit:
            raise TooCostly(f"A Bundle may hold at most {limit} entries; this one has {len(raw_entries)}")
        if kind == "transaction":
            try:
                entries = [self._entry(i, e, req.base_url) for i, e in enumerate(raw_entries)]
                return self._transaction(repo, req, entries)
            except RhipError as error:
                if hook is not None and hook.refused is not None:
                    hook.refused(sent, error)
                raise
        if kind == "batch":
            return self._batch(repo, req, raw_entries)
        raise InvalidRequest(
            f"Bundle.type must be batch or transaction, not {kind!r}", expression=["Bundle.type"]
        )

    # -- parsing ----------------------------------------------------------------------------------
    def _entry(self, index: int, raw: Any, base: str) -> _Entry:
        where = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"{where} must be an object", expression=[where])
        request = raw.get("request")
        if not isinstance(request, dict):
            raise InvalidRequest(f"{where}.request is required", expression=[f"{where}.request"])
        method = request.get("method")
        url = request.get("url")
        if method not in METHOD_ORDER or not isinstance(url, str) or not url:
            raise InvalidRequest(
                f"{where}.request needs a method (GET, HEAD, POST, PUT, PATCH, DELETE) and a url",
                expression=[f"{where}.request"],
            )
        if base and url.startswith(base + "/"):
            url = url[len(base) + 1 :]
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            raise InvalidRequest(
                f"{where}.request.url must be relative to this server: {url}",
                expression=[f"{where}.request.url"],
            )
        headers = {}
        for key, header in (
            ("ifNoneExist", "if-none-exist"),
            ("ifMatch", "if-match"),
            ("ifNoneMatch", "if-none-match"),
            ("ifModifiedSince", "if-modified-since"),
        ):
            if isinstance(request.get(key), str):
                headers[header] = request[key]
        resource = raw.get("resource")
        if resource is not None and not isinstance(resource, dict):
            raise InvalidRequest(f"{where}.resource must be an object", expression=[f"{where}.resource"])
        if method in ("POST", "PUT") and resource is None:
            raise InvalidRequest(f"{where} ({method}) needs a resource", expression=[f"{where}.resource"])
        full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
        entry = _Entry(
            index,
            method,
            parts.path.strip("/"),
            parse_qsl(parts.query, keep_blank_values=True),
            headers,
            resource,
            full_url,
        )
        segs = entry.path.split("/") if entry.path else []
        entry.rtype = segs[0] if segs else ""
        entry.rid = segs[1] if len(segs) > 1 and not segs[1].startswith(("$", "_")) else None
        entry.operation = any(s.startswith("$") for s in segs)
        return entry

    # -- transaction ------------------------------------------------------------------------------
    def _transaction(self, repo: FhirRepository, req: FhirRequest, entries: list[_Entry]) -> FhirResponse:
        seen_urls: set[str] = set()
        for e in entries:
            if e.full_url:
                if e.full_url in seen_urls:
                    raise InvalidRequest(
                        f"fullUrl {e.full_url} appears twice in the transaction",
                        expression=[f"Bundle.entry[{e.index}].fullUrl"],
                    )
                seen_urls.add(e.full_url)
        responses: dict[int, FhirResponse] = {}
        ordered = sorted(entries, key=lambda x: METHOD_ORDER[x.method])
        with repo.transaction() as tx:
            # The criteria locks of conditional creates and updates, all at once and in one order: taken
            # entry by entry, two transactions could each hold one the other waits for.
            for key in sorted(self._criteria_locks(entries)):
                tx.lock(key)
            # What conditional DELETEs will remove, found before anything changes: no resource may be
            # changed twice in a transaction, resolved conditional ones included.
            for e in ordered:
                if e.method == "DELETE" and e.rid is None and e.query and not e.operation:
                    e.targets = self._entry_step(e, partial(self._delete_targets, tx, e))
            # DELETEs first, as the specification orders them: conditional creates and references that
            # follow must not find what this transaction removes.
            for e in ordered:
                if e.method == "DELETE":
                    responses[e.index] = self._entry_step(e, partial(self._run, tx, req, e))
            ids: dict[str, str] = {}
            for e in entries:
                self._entry_step(e, partial(self._assign_id, tx, e, ids))
            self._no_resource_twice(entries)
            for e in entries:
                if e.resource is not None:
                    e.resource = self._entry_step(e, partial(self._rewrite, tx, e.resource, ids))
            for e in ordered:
                if e.method != "DELETE":
                    responses[e.index] = self._entry_step(e, partial(self._run, tx, req, e))
        return FhirResponse(200, self._response_bundle("transaction-response", req, entries, responses))

    @staticmethod
    def _criteria_locks(entries: list[_Entry]) -> set[str]:
        keys = set()
        for e in entries:
            condition = e.headers.get("if-none-exist")
            if e.operation:
                continue
            if e.method == "POST" and e.rid is None and e.resource is not None and condition:
                keys.add(f"{e.rtype}?{condition}")
            elif e.method == "PUT" and e.rid is None and e.query:
                keys.add(f"{e.rtype}?{_query_text(e.query)}")
        return keys

    @staticmethod
    def _entry_step(e: _Entry, step: Callable[[], T]) -> T:
        """Run one step of an entry; its errors name the entry."""
        try:
            return step()
        except RhipError as error:
            raise _at_entry(error, e) from error

    @staticmethod
    def _no_resource_twice(entries: list[_Entry]) -> None:
        seen: set[tuple[str, str]] = set()
        for e in entries:
            if e.method not in ("PUT", "DELETE", "PATCH"):
                continue
            for rid in [e.rid] if e.rid else e.targets:
                key = (e.rtype, rid)
                if key in seen:
                    raise InvalidRequest(
                        f"{e.rtype}/{rid} is changed twice in one transaction",
                        expression=[f"Bundle.entry[{e.index}]"],
                    )
                seen.add(key)

    def _delete_targets(self, tx: FhirRepository, e: _Entry) -> list[str]:
        it = self.service.interactions
        it.check_type(e.rtype)
        return [s.id for s in it.delete_targets(tx, e.rtype, _query_text(e.query))]

    def _assign_id(self, tx: FhirRepository, e: _Entry, ids: dict[str, str]) -> None:
        """Give an entry the ``Type/id`` it will have once the transaction commits; map its fullUrl to it."""
        it = self.service.interactions
        if e.operation:
            return  # an operation's Parameters get no id; the service checks its path when it runs
        if e.rtype:
            it.check_type(e.rtype)
        if e.method == "POST" and e.rid is None and e.resource is not None:
            condition = e.headers.get("if-none-exist")
            if condition:
                tx.lock(f"{e.rtype}?{condition}")
                found = it.matches(tx, it.criteria(e.rtype, condition))
                if len(found) > 1:
                    raise MultipleMatches(f"ifNoneExist '{condition}' matches more than one {e.rtype}")
                if found:
                    e.existing = found[0]
                    if e.full_url:
                        ids[e.full_url] = f"{e.rtype}/{found[0].id}"
                    return
            e.assigned_id = tx.new_id()
            if e.full_url:
                ids[e.full_url] = f"{e.rtype}/{e.assigned_id}"
        elif e.method == "PUT" and e.resource is not None:
            if e.rid is None and e.query:
                criteria = _query_text(e.query)
                tx.lock(f"{e.rtype}?{criteria}")  # as a conditional update outside a Bundle does
                found = it.matches(tx, it.criteria(e.rtype, criteria))
                if len(found) > 1:
                    raise MultipleMatches(f"Conditional update matches more than one {e.rtype}")
                body_id = e.resource.get("id")
                if found:
                    if body_id not in (None, found[0].id):
                        raise InvalidRequest(
                            f"The id in the body does not match the resource the criteria select ({found[0].id})"
                        )
                    rid = found[0].id
                else:
                    # No match: a create, with the client's id if it gave one, which must not be taken.
                    rid = body_id if isinstance(body_id, str) else tx.new_id()
                    e.assigned_id = rid
                e.rid, e.query = rid, []
                e.resource = {**e.resource, "id": rid}
            if e.full_url and e.rid:
                ids[e.full_url] = f"{e.rtype}/{e.rid}"
        elif e.method == "PATCH" and e.rid is None and e.query:
            found = it.matches(tx, it.criteria(e.rtype, _query_text(e.query)))
            if len(found) > 1:
                raise MultipleMatches(f"Conditional patch matches more than one {e.rtype}")
            if not found:
                raise ResourceNotFound(f"Conditional patch matches no {e.rtype}")
            e.rid, e.query = found[0].id, []

    def _rewrite(self, tx: FhirRepository, resource: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
        """The resource with urn:uuid and conditional references replaced.

        Works on the serialised JSON: every ``"reference":"…"`` string is found with one regular-expression
        pass, several times faster than walking the resource in Python.
        """
        raw = orjson.dumps(resource)
        if b'"reference":"' not in raw:
            return resource

        def replace(match: re.Match[bytes]) -> bytes:
            text = match.group(1)
            ref = orjson.loads(b'"' + text + b'"') if b"\\" in text else text.decode()
            if ref in ids:
                return b'"reference":' + orjson.dumps(ids[ref])
            if ref.startswith(("urn:uuid:", "urn:oid:")):
                raise InvalidRequest(f"Reference {ref} names no entry of this transaction")
            if "?" in ref and "/" not in ref.split("?", 1)[0]:
                return b'"reference":' + orjson.dumps(self._conditional_reference(tx, ref))
            return match.group(0)

        rewritten = _REFERENCE.sub(replace, raw)
        return resource if rewritten == raw else dict(orjson.loads(rewritten))

    def _conditional_reference(self, tx: FhirRepository, ref: str) -> str:
        it = self.service.interactions
        rtype, criteria = ref.split("?", 1)
        it.check_type(rtype)
        found = it.matches(tx, it.criteria(rtype, criteria))
        if len(found) != 1:
            if found:
                raise MultipleMatches(f"Conditional reference {ref} matches more than one {rtype}")
            raise InvalidRequest(f"Conditional reference {ref} matches no {rtype}")
        return f"{rtype}/{found[0].id}"

    def _run(self, repo: FhirRepository, req: FhirRequest, e: _Entry) -> FhirResponse:
        it = self.service.interactions
        sub = FhirRequest(
            e.method, e.path, list(e.query), {**_passthrough(req), **e.headers}, b"", req.base_url
        )
        if e.operation:
            return self._operation(repo, sub, e)
        if e.method == "POST" and e.rid is None:
            assert e.resource is not None
            if e.existing is not None:
                return it.respond(sub, e.existing, 200)
            sub.headers = {k: v for k, v in sub.headers.items() if k != "if-none-exist"}
            return it.create(repo, sub, e.rtype, assigned_id=e.assigned_id, body=e.resource)
        if e.method == "PUT":
            assert e.resource is not None
            if e.assigned_id is not None:  # a conditional update that matched nothing creates
                return it.create(repo, sub, e.rtype, assigned_id=e.assigned_id, body=e.resource)
            if e.rid is None and e.query:
                return it.conditional_update(repo, sub, e.rtype, _query_text(e.query), body=e.resource)
            if e.rid is None:
                raise InvalidRequest("PUT needs an id or search criteria in request.url")
            return it.update(repo, sub, e.rtype, e.rid, body=e.resource)
        if e.method == "PATCH":
            if e.resource is None or e.resource.get("resourceType") != "Binary":
                raise InvalidRequest("A PATCH entry carries its JSON Patch as a Binary resource")
            sub.headers = {**sub.headers, "content-type": "application/json-patch+json"}
            sub.body = _binary_data(e.resource)
            return it.patch(repo, sub, e.rtype, e.rid, None if e.rid else _query_text(e.query))
        if e.method in ("GET", "HEAD", "DELETE"):
            if e.method == "HEAD":
                sub.method = "GET"
            response = self.service.dispatch(repo, sub)
            if e.method == "HEAD":
                response.body = None
            return response
        raise InvalidRequest(f"{e.method} {e.path} cannot be part of a Bundle")

    def _operation(self, repo: FhirRepository, sub: FhirRequest, e: _Entry) -> FhirResponse:
        """An operation entry, dispatched as the same request outside a Bundle (its resource is the body)."""
        if e.resource is not None:
            sub.body = orjson.dumps(e.resource)
            sub.headers = {**sub.headers, "content-type": "application/fhir+json"}
        head = e.method == "HEAD"
        if head:
            sub.method = "GET"
        response = self.service.dispatch(repo, sub)
        if head:
            response.body = None
        return response

    # -- batch -----------------------------------------------------------------------------------
    def _batch(self, repo: FhirRepository, req: FhirRequest, raw_entries: list[Any]) -> FhirResponse:
        entries: list[_Entry] = []
        responses: dict[int, FhirResponse] = {}
        for i, raw in enumerate(raw_entries):
            try:
                e = self._entry(i, raw, req.base_url)
            except RhipError as error:
                e = _Entry(i, "GET", "", [], {}, None, None)
                responses[i] = _error(error)
                entries.append(e)
                continue
            entries.append(e)
            try:
                if e.resource is not None and _has_internal_refs(e.resource):
                    raise InvalidRequest(
                        "Batch entries cannot reference each other with urn:uuid; use a transaction"
                    )
                if e.method == "POST" and e.rid is None and not e.operation:
                    responses[i] = self.service.interactions.create(
                        repo,
                        FhirRequest(
                            "POST", e.path, [], {**_passthrough(req), **e.headers}, b"", req.base_url
                        ),
                        e.rtype,
                        body=e.resource,
                    )
                else:
                    responses[i] = self._run(repo, req, e)
            except RhipError as error:
                responses[i] = _error(error)
        return FhirResponse(200, self._response_bundle("batch-response", req, entries, responses))

    def _response_bundle(
        self, kind: str, req: FhirRequest, entries: list[_Entry], responses: dict[int, FhirResponse]
    ) -> bytes:
        out: list[bytes] = []
        for e in entries:
            r = responses[e.index]
            response: dict[str, Any] = {"status": f"{r.status} {REASONS.get(r.status, '')}".strip()}
            parts = [b"{"]
            if r.stored is not None:
                response["etag"] = r.stored.etag
                response["lastModified"] = r.stored.last_updated
                if e.method in ("POST", "PUT", "PATCH"):
                    response["location"] = r.stored.location
                parts.append(
                    b'"fullUrl":'
                    + orjson.dumps(f"{req.base_url}/{r.stored.resource_type}/{r.stored.id}")
                    + b","
                )
            if r.body is not None and r.status < 400:
                parts.append(b'"resource":' + r.body + b",")
            elif r.body is not None:
                response["outcome"] = orjson.loads(r.body)
            parts.append(b'"response":' + orjson.dumps(response) + b"}")
            out.append(b"".join(parts))
        head = {
            "resourceType": "Bundle",
            "id": new_resource_id(),
            "type": kind,
            "meta": {"lastUpdated": now_instant()},
        }
        envelope = orjson.dumps(head)
        return envelope[:-1] + b',"entry":[' + b",".join(out) + b"]}" if out else envelope


def _error(error: RhipError) -> FhirResponse:
    return FhirResponse(error.http_status, dumps(outcome_for_error(error)))


def _at_entry(error: RhipError, e: _Entry) -> RhipError:
    """The same error, saying which entry of the Bundle failed."""
    where = f"Bundle.entry[{e.index}]"
    issues = [
        Issue(
            i.severity,
            i.code,
            f"{where} ({e.method} {e.path or e.rtype}): {i.diagnostics}",
            i.expression or (where,),
            i.rhip_code,
        )
        for i in error.issues()
    ]
    annotated = type(error)("", issues=issues)
    annotated.code = error.code
    return annotated


def _passthrough(req: FhirRequest) -> dict[str, str]:
    return {k: v for k, v in req.headers.items() if k in ("prefer", "accept")}


def _query_text(query: list[tuple[str, str]]) -> str:
    return urlencode(query)


def _binary_data(resource: dict[str, Any]) -> bytes:
    data = resource.get("data")
    if not isinstance(data, str):
        raise InvalidRequest("The Binary of a PATCH entry has no data")
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise InvalidRequest("The Binary data of a PATCH entry is not base64") from exc


def _has_internal_refs(node: Any) -> bool:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:"):
            return True
        return any(_has_internal_refs(v) for v in node.values() if isinstance(v, dict | list))
    if isinstance(node, list):
        return any(_has_internal_refs(v) for v in node)
    return False
