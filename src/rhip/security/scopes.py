"""SMART on FHIR scopes (v2 ``system/Patient.rs``, ``user/*.cruds``; v1 ``patient/*.read`` accepted)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rhip.core.errors import InvalidRequest

# create, read, update, delete, search: the SMART v2 permission letters, in their required order.
PERMISSIONS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$")


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource scope: a context (patient | user | system), a resource type or ``*``, permissions."""

    context: str
    resource_type: str
    permissions: frozenset[str]

    def allows(self, resource_type: str, permission: str) -> bool:
        """Whether this scope grants ``permission`` (one of c r u d s) on ``resource_type``."""
        return permission in self.permissions and self.resource_type in ("*", resource_type)

    def __str__(self) -> str:
        letters = "".join(p for p in PERMISSIONS if p in self.permissions)
        return f"{self.context}/{self.resource_type}.{letters}"


def parse_scope(text: str) -> Scope | None:
    """A resource scope, or None for other scopes (``openid``, ``offline_access``, ``launch/patient``)."""
    found = _SCOPE.match(text)
    if found is None:
        return None
    context, rtype, perms, query = found.groups()
    if query:
        # Fine-grained v2 scopes (?category=…) would narrow access in ways this platform does not check;
        # refusing them is safer than granting more than they say.
        raise InvalidRequest(f"scope {text!r}: query parameters on scopes are not supported")
    if perms in _V1:
        letters = _V1[perms]
    else:
        if any(p not in PERMISSIONS for p in perms) or list(perms) != sorted(perms, key=PERMISSIONS.index):
            raise InvalidRequest(f"scope {text!r}: permissions are letters of 'cruds' in that order")
        letters = perms
    return Scope(context, rtype, frozenset(letters))


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    """Every resource scope of a space-separated scope string (or of a list of scopes)."""
    items = text.split() if isinstance(text, str) else list(text)
    return frozenset(s for s in (parse_scope(item) for item in items) if s is not None)


def intersect(requested: frozenset[Scope], allowed: frozenset[Scope]) -> frozenset[Scope]:
    """The part of ``requested`` that ``allowed`` covers (a token never gets more than its client may have)."""
    out = set()
    for r in requested:
        for a in allowed:
            if a.context != r.context:
                continue
            # The narrower of the two types: a wildcard meets a type in that type.
            if a.resource_type == "*":
                rtype = r.resource_type
            elif r.resource_type in ("*", a.resource_type):
                rtype = a.resource_type
            else:
                continue
            perms = r.permissions & a.permissions
            if perms:
                out.add(Scope(r.context, rtype, frozenset(perms)))
    return frozenset(_merge(out))


def _merge(scopes: set[Scope]) -> set[Scope]:
    merged: dict[tuple[str, str], set[str]] = {}
    for s in scopes:
        merged.setdefault((s.context, s.resource_type), set()).update(s.permissions)
    return {Scope(c, t, frozenset(p)) for (c, t), p in merged.items()}


def scope_string(scopes: Iterable[Scope]) -> str:
    """Scopes as the space-separated string of a token response."""
    return " ".join(sorted(str(s) for s in scopes))
