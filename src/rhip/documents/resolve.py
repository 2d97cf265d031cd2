"""What each document of a batch is, given what is registered: new, a repeat, a conflict or a new version.

- Same document id, same bytes as a registered document: nothing to write, the receipt of that one.
- Same document id, other bytes: refused (DocumentConflict; XDS calls it a non-identical hash).
- ``relatedDocument`` RPLC (the parent's id): it replaces that document, which must be current.
- Same setId, higher versionNumber than the set's current document: it replaces that one. A lower
  versionNumber (a late arrival) is registered as ``superseded`` and replaces nothing.
Documents are taken in versionNumber order (replacements by id last), so that versions 1, 2, 3 of one set
in one batch chain up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rhip.core.errors import RhipError
from rhip.documents import registry as reg
from rhip.documents.assembly import Pending
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
        elif set_key:
            now = current_of(set_key)
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


def _conflict(p: Pending) -> DocumentConflict:
    return DocumentConflict(
        f"document {p.facts.document_key} is already registered with other content (a non-identical hash)",
        expression=["/ClinicalDocument/id"],
    )
