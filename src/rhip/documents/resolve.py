"""What each document of a batch is, given what is registered: new, a repeat, a conflict or a new version.

- Same document id, same bytes as a registered document: nothing to write, the receipt of that one.
- Same document id, other bytes: refused (DocumentConflict; XDS calls it a non-identical hash).
- ``relatedDocument`` RPLC (the parent's id): it replaces that document, which must be current.
- Same setId, higher versionNumber than the set's current document: it replaces that one. A lower
  versionNumber (a late arrival) is registered as ``superseded`` and replaces nothing.
Documents are taken in versionNumber order (replacements by id last), so that versions 1, 2, 3 of one set
in one batch chain up.

A replacement (by id or by setId) must stay with its owner: the document it replaces must be of the same
institution and of the same patient (the same local patient key here; for a registered document, the same
Patient once the batch's records are known, checked by the service). Otherwise it is refused
(ReplacementRefused), so that no institution can supersede another's documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rhip.core.errors import RhipError
from rhip.documents import registry as reg
from rhip.documents.assembly import Pending
from rhip.documents.cda.encounter import visit_identifier
from rhip.documents.known import patient_keys
from rhip.documents.model import DocumentConflict, DocumentReceipt, ReplacementRefused
from rhip.documents.queries import Registered, master_token, set_token

Version = Pending | Registered


@dataclass
class Resolution:
    """The batch sorted out: what to register, what is already done or refused, and repeats."""

    to_register: dict[int, Pending] = field(default_factory=dict)
    outcomes: dict[int, DocumentReceipt | RhipError] = field(default_factory=dict)
    aliases: dict[int, int] = field(default_factory=dict)  # batch index -> index of the same document


def _version_of(v: Version) -> int:
    return v.facts.version if isinstance(v, Pending) else v.document_version


def _is_current(v: Version, superseded: set[str]) -> bool:
    if isinstance(v, Pending):
        return v.status == "current"
    return v.status == "current" and v.id not in superseded


def resolve(pending: Mapping[int, Pending], registered: list[Registered]) -> Resolution:
    """Sort a batch out against the registered documents the pre-check found."""
    out = Resolution()
    by_master = {master_token(r.resource): r for r in registered}
    by_set: dict[str, list[Registered]] = {}
    for r in registered:
        key = set_token(r.resource)
        if key:
            by_set.setdefault(key, []).append(r)
    seen: dict[str, int] = {}  # master token -> batch index
    current: dict[str, Version] = {}  # set token -> its current version so far
    superseded: set[str] = set()  # registered ids this batch supersedes

    def current_of(key: str) -> Version | None:
        if key in current:
            return current[key]
        live = [r for r in by_set.get(key, ()) if _is_current(r, superseded)]
        return max(live, key=_version_of) if live else None

    # Replacements by id after the documents they may name; each group in versionNumber order.
    for i in sorted(
        pending, key=lambda i: (pending[i].facts.replaces is not None, pending[i].facts.version, i)
    ):
        p = pending[i]
        token = p.master_token
        if token in by_master:
            known = by_master[token]
            out.outcomes[i] = known.receipt() if known.sha1 == p.sha1 else _conflict(p)
            continue
        if token in seen:
            first = pending[seen[token]]
            if first.sha1 == p.sha1:
                out.aliases[i] = seen[token]
            else:
                out.outcomes[i] = _conflict(p)
            continue
        target: Version | None = None
        set_key = reg.token(reg.set_identifier(p.facts.set_id)) if p.facts.set_id else ""
        if p.facts.replaces:
            parent = reg.token(reg.document_identifier(p.facts.replaces))
            target = pending[seen[parent]] if parent in seen else by_master.get(parent)
            if target is not None and not _is_current(target, superseded):
                out.outcomes[i] = ReplacementRefused(
                    f"document {p.facts.document_key} replaces {parent}, which is no longer current",
                    expression=["/ClinicalDocument/relatedDocument/parentDocument/id"],
                )
                continue
            if target is not None and (refusal := _other_owner(p, target, parent)) is not None:
                out.outcomes[i] = refusal
                continue
        elif set_key:
            now = current_of(set_key)
            if now is not None and (refusal := _other_owner(p, now, set_key)) is not None:
                out.outcomes[i] = refusal
                continue
            if now is not None and _version_of(now) < p.facts.version:
                target = now
            elif now is not None and _version_of(now) > p.facts.version:
                p.status = "superseded"
        if isinstance(target, Pending):
            target.status = "superseded"
            p.replaces_pending = target
        elif isinstance(target, Registered):
            superseded.add(target.id)
            p.replaces_registered = target
        seen[token] = i
        if set_key and p.status == "current":
            current[set_key] = p
        out.to_register[i] = p
    return out


def institution_of(v: Version) -> str:
    """The institution code a document belongs to: its author organization, else its custodian."""
    if isinstance(v, Pending):
        return v.facts.author_org.code
    for key in ("author", "custodian"):
        value = v.resource.get(key)
        for ref in value if isinstance(value, list) else [value]:
            ident = ref.get("identifier") if isinstance(ref, dict) else None
            if (
                isinstance(ident, dict)
                and ident.get("system") == reg.ORGANIZATION_SYSTEM
                and ident.get("value")
            ):
                return str(ident["value"])
    return ""


def _other_owner(p: Pending, target: Version, named: str) -> ReplacementRefused | None:
    """The refusal of ``p`` replacing ``target`` when that is another institution's or another patient's."""
    where = (
        ["/ClinicalDocument/relatedDocument/parentDocument/id"]
        if p.facts.replaces
        else ["/ClinicalDocument/setId"]
    )
    if institution_of(target) != p.facts.author_org.code:
        return ReplacementRefused(
            f"document {p.facts.document_key} would replace {named}, a document of another institution",
            expression=where,
        )
    if isinstance(target, Pending) and not _same_patient(p, target):
        return ReplacementRefused(
            f"document {p.facts.document_key} would replace {named}, a document of another patient",
            expression=where,
        )
    return None


def _same_patient(p: Pending, target: Pending) -> bool:
    """Whether two documents of a batch name the same local patient (or, without any, the same visit)."""
    keys, target_keys = set(patient_keys(p.facts)), set(patient_keys(target.facts))
    if keys or target_keys:
        return bool(keys & target_keys)
    visit, target_visit = visit_identifier(p.doc), visit_identifier(target.doc)
    return visit is not None and visit == target_visit


def other_patient(p: Pending, patient_ref: str) -> ReplacementRefused | None:
    """The refusal of ``p`` when the registered document it replaces is not of its patient (``patient_ref``,
    the Patient the batch resolved it to)."""
    old = p.replaces_registered
    if old is None:
        return None
    subject = old.resource.get("subject")
    if isinstance(subject, dict) and subject.get("reference") == patient_ref:
        return None
    where = (
        ["/ClinicalDocument/relatedDocument/parentDocument/id"]
        if p.facts.replaces
        else ["/ClinicalDocument/setId"]
    )
    return ReplacementRefused(
        f"document {p.facts.document_key} would replace DocumentReference/{old.id}, a document of another patient",
        expression=where,
    )


def _conflict(p: Pending) -> DocumentConflict:
    return DocumentConflict(
        f"document {p.facts.document_key} is already registered with other content (a non-identical hash)",
        expression=["/ClinicalDocument/id"],
    )
