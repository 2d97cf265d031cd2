"""SecuredRepository: the FhirRepository every door uses; authorises and audits each call.

It reads the caller from :mod:`rhip.security.context` (a door that set none gets Unauthenticated),
asks the policy, narrows searches in SQL (:class:`rhip.fhir.search.query.AccessFilter`), checks what a
search includes and what ``$everything`` returns item by item, labels sensitive data on its way in, and
records every access (buffered) and every change (in the change's own transaction).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from rhip.core.errors import Forbidden, InvalidRequest, ResourceGone, ResourceNotFound
from rhip.fhir.repository import (
    EverythingRequest,
    FhirRepository,
    HistoryPage,
    HistoryRequest,
    SearchPage,
    StoredResource,
)
from rhip.fhir.search.query import SearchQuery
from rhip.security.audit.fhir_page import AuditRestriction
from rhip.security.context import break_glass_reason, current_principal
from rhip.security.decision import Decision
from rhip.security.facts import source_institution
from rhip.security.guard import Guard
from rhip.security.policy import UNRESTRICTED, Caller
from rhip.security.principal import Principal, Role

AUDITED_LIMIT = 100  # resources named in one search's audit entry (the query and patients are always there)


class SecuredRepository:
    """A FhirRepository that enforces the access policy on another one."""

    def __init__(self, inner: FhirRepository, guard: Guard, *, in_transaction: bool = False) -> None:
        self.inner = inner
        self.guard = guard
        self.in_transaction = in_transaction

    # -- helpers ---------------------------------------------------------------------------------
    def _caller(self) -> Caller:
        return self.guard.policy.caller(current_principal(), break_glass_reason())

    def _check(self, caller: Caller, stored: StoredResource) -> Decision:
        """The read decision for one stored resource (a Binary through its securityContext)."""
        policy = self.guard.policy
        if caller.role in UNRESTRICTED:
            return Decision(True, "admin", stored.compartment)
        if stored.content is None:
            return Decision(True, "deleted", stored.compartment)
        resource = stored.resource()
        if stored.resource_type == "Binary":
            context = (resource.get("securityContext") or {}).get("reference")
            if isinstance(context, str) and context.count("/") == 1 and caller.principal.may("Binary", "r"):
                ctype, cid = context.split("/")
                if ctype == "Patient":
                    # Content about a resident as a whole: their record's rule, never the directory's.
                    return policy.patient_access(caller, cid)
                if ctype != "Binary" and policy.facts.in_compartment(ctype):
                    # Read as the resource it belongs to (a document's DocumentReference); a context
                    # outside the compartments (an Organization) decides nothing: the Binary's own facts do.
                    try:
                        return self._check(caller, self.inner.read(ctype, cid))
                    except (ResourceNotFound, ResourceGone):
                        pass
        return policy.read(caller, stored.resource_type, resource)

    def _glass(self, caller: Caller, decision: Decision, what: str) -> None:
        if decision.glass and caller.glass:
            self.guard.alerts.raise_alert(caller.principal, decision.patient, caller.glass, what)

    def _accessed(
        self,
        caller: Caller,
        subtype: str,
        stored: Sequence[StoredResource],
        patients: Sequence[str],
        decision: Decision | None,
        *,
        query: str | None = None,
        refs: Sequence[tuple[str, str, int | None]] | None = None,
    ) -> None:
        detail = {"reason": decision.reason} if decision is not None else {}
        if caller.glass and decision is not None and decision.glass:
            detail["break-glass"] = caller.glass
        self.guard.audit.accessed(
            _acting(caller),
            action="E" if subtype == "operation" else "R",
            subtype=subtype,
            resources=refs
            if refs is not None
            else [(s.resource_type, s.id, s.version) for s in stored[:AUDITED_LIMIT]],
            patients=sorted(set(patients)),
            outcome="0" if decision is None or decision.allowed else "4",
            query=query,
            detail=detail,
        )

    def _refused(
        self,
        caller: Caller,
        action: str,
        subtype: str,
        refs: Sequence[tuple[str, str, int | None]],
        patient: str | None,
        reason: str,
        query: str | None = None,
    ) -> None:
        self.guard.audit.accessed(
            _acting(caller),
            action=action,
            subtype=subtype,
            resources=refs,
            patients=[patient] if patient else [],
            outcome="4",
            query=query,
            detail={"reason": reason},
        )

    # -- reads -----------------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> StoredResource:
        """The current version, when the caller may see it."""
        return self._read_one("read", resource_type, id, lambda: self.inner.read(resource_type, id))

    def vread(self, resource_type: str, id: str, version: int) -> StoredResource:
        """One version, when the caller may see it and the current version (a label or source given later
        holds for the history too)."""
        stored = self._read_one(
            "vread", resource_type, id, lambda: self.inner.vread(resource_type, id, version)
        )
        caller = self._caller()
        if caller.role not in UNRESTRICTED:
            try:
                current = self.inner.read(resource_type, id)
            except (ResourceNotFound, ResourceGone):
                return stored
            decision = self._check(caller, current)
            if not decision.allowed:
                self._refused(
                    caller, "R", "vread", [(resource_type, id, version)], decision.patient, decision.reason
                )
                decision.require()
        return stored

    def _read_one(self, subtype: str, resource_type: str, id: str, fetch: Any) -> StoredResource:
        caller = self._caller()
        if resource_type == "AuditEvent":
            raise ResourceNotFound("AuditEvents are searched, not read by id: GET AuditEvent?_id=…")
        if not caller.principal.may(resource_type, "r"):
            self._refused(caller, "R", subtype, [(resource_type, id, None)], None, "scope")
            Decision(False, "scope").require()
        try:
            stored: StoredResource = fetch()
        except (ResourceNotFound, ResourceGone):
            self._refused(caller, "R", subtype, [(resource_type, id, None)], None, "not-found")
            raise
        decision = self._check(caller, stored)
        self._accessed(caller, subtype, [stored], [decision.patient] if decision.patient else [], decision)
        self._glass(caller, decision, f"{resource_type}/{id}")
        decision.require()
        return stored

    def search(self, query: SearchQuery) -> SearchPage:
        """One page of what the caller may see of a search."""
        caller = self._caller()
        text = "&".join(f"{k}={v}" for k, v in query.canonical)
        if query.resource_type == "AuditEvent":
            return self._audit_search(caller, query, text)
        query = _unbind(caller.principal, query)
        try:
            scoped = self.guard.scoper.scope(caller, query)
        except Forbidden as error:
            self._refused(caller, "R", "search-type", [], None, error.message, text)
            raise
        page = self.inner.search(replace(query, access=scoped.access) if scoped.access else query)
        if query.page and scoped.access is not None:
            # A later page of a sorted search comes from the store's cached list, not from SQL with the
            # filter: each match is checked again (a paging link cannot carry another caller's results).
            page.matches = [m for m in page.matches if self._check(caller, m).allowed]
        if page.included and caller.role not in UNRESTRICTED:
            page.included = [r for r in page.included if self._check(caller, r).allowed]
        page.next_page = _bind(caller.principal, page.next_page)
        page.previous_page = _bind(caller.principal, page.previous_page)
        patients = list(scoped.patients) or [m.compartment for m in page.matches if m.compartment]
        decision = next(
            (d for d in scoped.decisions if d.glass), scoped.decisions[0] if scoped.decisions else None
        )
        # A search's entry names its query, the type searched and the residents it returned (BALP), not
        # every resource.
        searched = [(query.resource_type, "", None)]
        self._accessed(caller, "search-type", [], patients, decision, query=text, refs=searched)
        for d in scoped.decisions:
            self._glass(caller, d, f"{query.resource_type}?{text}")
        return page

    def count(self, query: SearchQuery) -> int:
        """How many of a search's matches the caller may see."""
        caller = self._caller()
        text = "&".join(f"{k}={v}" for k, v in query.canonical)
        if query.resource_type == "AuditEvent":
            raise Forbidden("Access denied: AuditEvents are counted with a search (_summary=count)")
        try:
            scoped = self.guard.scoper.scope(caller, query)
        except Forbidden as error:
            self._refused(caller, "R", "search-type", [], None, error.message, text)
            raise
        total = self.inner.count(replace(query, access=scoped.access) if scoped.access else query)
        self._accessed(caller, "search-type", [], list(scoped.patients), None, query=text)
        return total

    def history(self, request: HistoryRequest) -> HistoryPage:
        """Versions of one resource the caller may see; type and system history for administrators."""
        caller = self._caller()
        rtype = request.resource_type
        if caller.role not in UNRESTRICTED and (rtype is None or request.id is None):
            self._refused(caller, "R", "history-type", [], None, "history")
            Decision(False, "history").require()
        if rtype is not None and not caller.principal.may(rtype, "r"):
            self._refused(caller, "R", "history-instance", [(rtype, request.id or "", None)], None, "scope")
            Decision(False, "scope").require()
        page = self.inner.history(request)
        if caller.role not in UNRESTRICTED:
            decisions = [self._check(caller, e) for e in page.entries if e.content is not None]
            refused = next((d for d in decisions if not d.allowed), None)
            if refused is not None:
                self._refused(
                    caller,
                    "R",
                    "history-instance",
                    [(rtype or "", request.id or "", None)],
                    refused.patient,
                    refused.reason,
                )
                refused.require()
        subtype = "history-instance" if request.id else ("history-type" if rtype else "history-system")
        self._accessed(
            caller, subtype, page.entries, [e.compartment for e in page.entries if e.compartment], None
        )
        return page

    def everything(self, request: EverythingRequest) -> SearchPage:
        """A resident's compartment, when the caller may see the record, less what labels hold back."""
        caller = self._caller()
        if not caller.principal.may("Patient", "r"):
            self._refused(
                caller,
                "E",
                "operation",
                [("Patient", request.patient_id, None)],
                request.patient_id,
                "scope",
                "$everything",
            )
            Decision(False, "scope").require()
        decision = self.guard.policy.patient_access(caller, request.patient_id)
        if not decision.allowed and self.guard.policy.holds(caller, request.patient_id):
            # The institution's own record of the resident: what it sent itself (filtered below).
            decision = Decision(True, "own-record", request.patient_id)
        if not decision.allowed:
            self._refused(
                caller,
                "E",
                "operation",
                [("Patient", request.patient_id, None)],
                request.patient_id,
                decision.reason,
                "$everything",
            )
            decision.require()
        page = self.inner.everything(replace(request, page=_unbind_text(caller.principal, request.page)))
        before = len(page.matches) + len(page.included)
        if caller.role is Role.RESIDENT:
            # Their own record: only the token's scopes narrow it (a token for Patient.rs reads no labs).
            page.matches = [m for m in page.matches if caller.principal.may(m.resource_type, "r")]
            page.included = [m for m in page.included if caller.principal.may(m.resource_type, "r")]
        elif caller.role not in UNRESTRICTED:
            page.matches = [m for m in page.matches if self._check(caller, m).allowed]
            page.included = [m for m in page.included if self._check(caller, m).allowed]
        if len(page.matches) + len(page.included) != before:
            page.total = None  # the store's total would count what was held back
        page.next_page = _bind(caller.principal, page.next_page)
        self._accessed(
            caller,
            "operation",
            [*page.matches, *page.included],
            [request.patient_id],
            decision,
            query="$everything",
        )
        self._glass(caller, decision, f"Patient/{request.patient_id}/$everything")
        return page

    def _audit_search(self, caller: Caller, query: SearchQuery, text: str) -> SearchPage:
        p = caller.principal
        restrict: AuditRestriction | None = None
        if caller.role is Role.RESIDENT:
            # Who viewed my record (公众门户): entries naming the resident's records, without the callers'
            # addresses, token ids, queries or other residents an entry names.
            mine = tuple(sorted(self.guard.policy.resident_patients(p)))
            restrict = AuditRestriction(patients=mine, public=True)
        elif caller.role not in UNRESTRICTED:
            self._refused(caller, "R", "search-type", [], None, "role", text)
            Decision(False, "role").require()
        page = self.guard.audit.search_page(query, restrict)
        self._accessed(
            caller, "search-type", [], list(restrict.patients or ()) if restrict else [], None, query=text
        )
        return page

    # -- writes ----------------------------------------------------------------------------------
    def create(self, resource: dict[str, Any], *, id: str | None = None, put: bool = False) -> StoredResource:
        """Store a new resource the caller may write, with its audit entry."""
        caller = self._caller()
        resource = self._prepare(caller, resource)
        rtype = str(resource.get("resourceType", ""))
        self._decide_write(caller, "create", rtype, resource, None, id)
        with self._unit() as tx:
            stored = tx.create(resource, id=id, put=put)
            self._changed(tx, caller, "C", "create", stored)
        self._after_write(rtype)
        return stored

    def update(
        self, resource_type: str, id: str, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Store a new version (or create with this id) when the caller may."""
        caller = self._caller()
        resource = self._prepare(caller, resource)
        old = self._current(resource_type, id)
        self._decide_write(
            caller, "update" if old is not None else "create", resource_type, resource, old, id
        )
        with self._unit() as tx:
            stored, created = tx.update(resource_type, id, resource, if_match=if_match)
            self._changed(tx, caller, "C" if created else "U", "create" if created else "update", stored)
        self._after_write(resource_type)
        return stored, created

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        """Delete a resource the caller may delete."""
        caller = self._caller()
        old = self._current(resource_type, id)
        if old is not None:
            self._decide_write(caller, "delete", resource_type, None, old, id)
        elif not caller.principal.may(resource_type, "d") or resource_type == "AuditEvent":
            self._decide_write(caller, "delete", resource_type, None, {"resourceType": resource_type}, id)
        with self._unit() as tx:
            gone = tx.delete(resource_type, id)
            if gone is not None:
                self._changed(tx, caller, "D", "delete", gone, old)
        self._after_write(resource_type)
        return gone

    def _prepare(self, caller: Caller, resource: dict[str, Any]) -> dict[str, Any]:
        return self.guard.labels.label(self.guard.policy.stamp_source(caller, resource))

    def _current(self, resource_type: str, id: str) -> dict[str, Any] | None:
        try:
            return self.inner.read(resource_type, id).resource()
        except (ResourceNotFound, ResourceGone):
            return None

    def _decide_write(
        self,
        caller: Caller,
        action: str,
        rtype: str,
        new: dict[str, Any] | None,
        old: dict[str, Any] | None,
        id: str | None,
    ) -> None:
        decision = self.guard.policy.write(caller, action, rtype, new, old)
        if not decision.allowed:
            code = {"create": "C", "update": "U", "delete": "D"}[action]
            self._refused(caller, code, action, [(rtype, id or "", None)], decision.patient, decision.reason)
            decision.require()

    def _changed(
        self,
        tx: FhirRepository,
        caller: Caller,
        action: str,
        subtype: str,
        stored: StoredResource,
        old: dict[str, Any] | None = None,
    ) -> None:
        patient = stored.compartment
        if patient is None and stored.content is not None:
            patient = self.guard.policy.facts.patient_of(stored.resource_type, stored.resource())
        elif patient is None and old is not None:
            patient = self.guard.policy.facts.patient_of(stored.resource_type, old)
        acting = _acting(caller)
        if len(acting.institutions) > 1 and stored.content is not None:
            # A batch of several institutions' messages: each change is recorded as its sender's.
            sender = source_institution(
                self.guard.policy.facts.facts(stored.resource_type, stored.resource()).source
            )
            if sender in acting.institutions:
                acting = replace(acting, institution=sender)
        self.guard.audit.changed(
            tx,
            acting,
            action=action,
            subtype=subtype,
            resources=[(stored.resource_type, stored.id, stored.version)],
            patients=[patient] if patient else [],
        )

    def _after_write(self, resource_type: str) -> None:
        policy = self.guard.policy
        if resource_type == "Consent":
            policy.consents.invalidate()
        elif resource_type == "Organization":
            policy.directory.clear()
        elif resource_type in ("Encounter", "ServiceRequest", "EpisodeOfCare", "Appointment"):
            policy.care.forget_refusals()
        else:
            return
        policy.changed()

    @contextmanager
    def _unit(self) -> Iterator[FhirRepository]:
        if self.in_transaction:
            yield self.inner
        else:
            with self.inner.transaction() as tx:
                yield tx

    # -- units of work ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[FhirRepository]:
        """A unit of work whose every call is authorised and audited like any other."""
        if self.in_transaction:
            yield self
            return
        with self.inner.transaction() as tx:
            yield SecuredRepository(tx, self.guard, in_transaction=True)

    def lock(self, key: str) -> None:
        """Serialise with other transactions locking ``key``."""
        self.inner.lock(key)

    def new_id(self) -> str:
        """A fresh resource id."""
        return self.inner.new_id()

    def record(self, entry: Mapping[str, Any]) -> None:
        """Keep an audit row with the changes of this transaction."""
        self.inner.record(entry)


def _acting(caller: Caller) -> Principal:
    p = caller.principal
    if caller.glass and p.purpose != "ETREAT":
        return replace(p, purpose="ETREAT")
    return p


def _tag(principal: Principal) -> str:
    return hashlib.sha256(principal.subject.encode()).hexdigest()[:10]


def _bind(principal: Principal, token: str | None) -> str | None:
    """A paging token only the same caller can use (a cached result list was filtered for them)."""
    return f"{_tag(principal)}~{token}" if token else token


def _unbind_text(principal: Principal, token: str | None) -> str | None:
    if not token:
        return token
    tag, sep, inner = token.partition("~")
    if not sep or tag != _tag(principal):
        raise InvalidRequest("The paging link is invalid or belongs to another session; repeat the search")
    return inner


def _unbind(principal: Principal, query: SearchQuery) -> SearchQuery:
    if not query.page:
        return query
    return replace(query, page=_unbind_text(principal, query.page))
