"""What capabilities add to the FHIR REST API: operations (``$match``, ``$ihe-pix`` …), search parameters
they resolve themselves (a Patient's name in pinyin …) and transaction-Bundle hooks (MHD's
ProvideDocumentBundle …).

Capabilities build :class:`OperationSpec` and :class:`SearchParamExtension` values; the composition root
collects them in one :class:`Extensions` and hands it to the FhirService and the CapabilityStatement.

An extension search parameter never reaches the search parser: :meth:`Extensions.rewrite_search` asks its
resolver for the matching ids and replaces it by one ``_id`` filter, intersected with the other extension
parameters and with any ``_id`` of the query. Paging links repeat the client's parameters, not the ids, so
a link stays short (1,000 ids would make a URL of tens of kilobytes, beyond what proxies accept) and each
page resolves them again, as every search filter is evaluated again on each page.

A :class:`BundleHook` is chosen by a profile a transaction Bundle claims in ``meta.profile``. Its
``prepare`` runs before the transaction is processed and returns the Bundle to process instead (entries
added or completed: the hash of a document, the resources extracted from it …), or raises an RhipError to
refuse it; it runs outside the transaction's unit of work, so it may read the store but must not write.
Its optional ``refused`` is told when the prepared transaction then fails (to keep what was refused).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rhip.core.errors import InvalidRequest, RhipError, TooCostly
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.search.parse import split_unescaped, unescape

MAX_RESOLVED_IDS = 1000
"""The most ids an extension search parameter may stand for. They become one ``_id`` filter (an SQL ``IN``
list); a resolver with more matches answers None, and the client is asked to add criteria (400)."""

OPERATION_METHODS = frozenset({"GET", "POST"})
# Operations rhip.fhir.rest.operations answers itself, before any registered one: (type, or '*' for every
# type, and code). Registering one of them is refused: it would never run.
BUILT_IN_OPERATIONS = frozenset({("*", "validate"), ("Patient", "everything")})

OperationHandler = Callable[[FhirRepository, FhirRequest, str | None], FhirResponse]
"""Runs an operation: (repository, request, instance id or None at type and system level)."""


@dataclass(frozen=True)
class BundleHook:
    """What a capability does with transaction Bundles claiming one profile (e.g. MHD ProvideDocumentBundle)."""

    profile: str  # canonical URL, without a |version
    prepare: Callable[[dict[str, Any]], dict[str, Any]]  # the Bundle to process; raises to refuse it
    # Told when the prepared transaction failed, with the Bundle as the client sent it.
    refused: Callable[[dict[str, Any], RhipError], None] | None = None

    def __post_init__(self) -> None:
        if not self.profile or "|" in self.profile:
            raise ValueError(f"bundle hook profile {self.profile!r}: a canonical URL without a version")


@dataclass(frozen=True)
class OperationSpec:
    """An operation a capability contributes."""

    code: str  # without '$', e.g. 'match', 'ihe-pix', 'empi-link'
    resource_type: str | None  # e.g. 'Patient'; None = system level (/fhir/$code)
    type_level: bool  # /fhir/Patient/$code
    instance_level: bool  # /fhir/Patient/{id}/$code
    methods: tuple[str, ...]  # allowed HTTP methods, e.g. ('POST',) or ('GET', 'POST')
    handler: OperationHandler
    definition: dict[str, Any]  # the OperationDefinition resource (id, url, code, parameter …)

    def __post_init__(self) -> None:
        where = f"operation ${self.code}"
        if not self.code or self.code.startswith("$") or "/" in self.code:
            raise ValueError(f"{where}: the code is given without '$' and without '/'")
        if self.resource_type is None and (self.type_level or self.instance_level):
            raise ValueError(f"{where}: a system-level operation has no type or instance level")
        if self.resource_type is not None and not (self.type_level or self.instance_level):
            raise ValueError(f"{where}: on {self.resource_type} it needs the type or the instance level")
        if not self.methods or not set(self.methods) <= OPERATION_METHODS:
            raise ValueError(f"{where}: methods must be GET and/or POST, not {self.methods!r}")
        d = self.definition
        if d.get("resourceType") != "OperationDefinition" or d.get("code") != self.code:
            raise ValueError(
                f"{where}: the definition must be an OperationDefinition with code {self.code!r}"
            )
        for key in ("id", "url"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise ValueError(f"{where}: the definition has no {key}")

    @property
    def system_level(self) -> bool:
        """Whether the operation is invoked on the service base."""
        return self.resource_type is None

    def levels(self) -> str:
        """Where the operation is invoked, for error messages: ``/Patient/$match`` or ``/$code``."""
        if self.resource_type is None:
            return f"/${self.code}"
        paths = [f"/{self.resource_type}/${self.code}"] if self.type_level else []
        if self.instance_level:
            paths.append(f"/{self.resource_type}/[id]/${self.code}")
        return " or ".join(paths)


@dataclass(frozen=True)
class SearchParamExtension:
    """A search parameter a capability resolves itself to a set of ids (e.g. the EMPI's name pinyin)."""

    resource_type: str  # 'Patient'
    name: str  # 'pinyin'
    type: str  # FHIR search parameter type for the CapabilityStatement: 'string' | 'token' …
    documentation: str
    definition_url: str
    # (modifier or '', values OR-ed) -> matching ids, at most MAX_RESOLVED_IDS; None = too many. A modifier
    # the capability does not support is an InvalidRequest it raises.
    resolve: Callable[[str, list[str]], list[str] | None]

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith("_") or any(c in self.name for c in ":.,="):
            raise ValueError(f"search parameter {self.name!r}: a plain name, not starting with '_'")


@dataclass(frozen=True)
class RewrittenSearch:
    """A search's parameters with the extension parameters replaced by the ids they resolve to."""

    params: list[tuple[str, str]]  # for the parser: the other parameters, then one _id unless ids is empty
    ids: tuple[str, ...]  # the ids every extension parameter (and the client's _id) allows; empty = none
    replaced: list[tuple[str, str]]  # the client's extension and _id pairs, which paging links repeat

    @property
    def empty(self) -> bool:
        """Whether nothing can match (no need to ask the repository)."""
        return not self.ids

    def link_params(self, canonical: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The parsed query's canonical pairs with the synthetic ``_id`` put back as the client's pairs."""
        synthetic = self.params[-1] if self.ids else None
        kept = list(canonical)
        if synthetic in kept:
            kept.remove(synthetic)
        return kept + self.replaced


@dataclass
class Extensions:
    """Registries (plain dicts) of what capabilities add to the FHIR API."""

    operations: dict[tuple[str | None, str], OperationSpec] = field(default_factory=dict)  # (type, code)
    search_params: dict[tuple[str, str], SearchParamExtension] = field(default_factory=dict)  # (type, name)
    bundle_hooks: dict[str, BundleHook] = field(default_factory=dict)  # meta.profile URL -> hook

    def add_operation(self, spec: OperationSpec) -> None:
        """Register an operation; ValueError when its (type, code) or its definition id is taken."""
        key = (spec.resource_type, spec.code)
        if key in BUILT_IN_OPERATIONS or (spec.resource_type and ("*", spec.code) in BUILT_IN_OPERATIONS):
            raise ValueError(
                f"operation ${spec.code} is built in (rhip.fhir.rest.operations) and would never run"
            )
        if key in self.operations:
            raise ValueError(
                f"operation ${spec.code} on {spec.resource_type or 'the system'} is registered twice"
            )
        other = self.definitions().get(spec.definition["id"])
        if other is not None and other != spec.definition:
            raise ValueError(f"two different OperationDefinitions have the id {spec.definition['id']!r}")
        self.operations[key] = spec

    def add_search_param(self, ext: SearchParamExtension) -> None:
        """Register a search parameter; ValueError when its (type, name) is taken."""
        key = (ext.resource_type, ext.name)
        if key in self.search_params:
            raise ValueError(f"search parameter {ext.name!r} of {ext.resource_type} is registered twice")
        self.search_params[key] = ext

    def add_bundle_hook(self, hook: BundleHook) -> None:
        """Register a transaction-Bundle hook; ValueError when its profile has one already."""
        if hook.profile in self.bundle_hooks:
            raise ValueError(f"a bundle hook for {hook.profile} is registered twice")
        self.bundle_hooks[hook.profile] = hook

    def bundle_hook(self, bundle: dict[str, Any]) -> BundleHook | None:
        """The hook of the first profile a Bundle claims that has one (``|version`` ignored), if any."""
        if not self.bundle_hooks:
            return None
        meta = bundle.get("meta")
        profiles = meta.get("profile") if isinstance(meta, dict) else None
        if not isinstance(profiles, list):
            return None
        for profile in profiles:
            hook = self.bundle_hooks.get(profile.split("|", 1)[0]) if isinstance(profile, str) else None
            if hook is not None:
                return hook
        return None

    def operation_named(self, code: str) -> list[OperationSpec]:
        """Every registration of an operation code, whatever its type or level."""
        return [s for (_, c), s in self.operations.items() if c == code]

    def definitions(self) -> dict[str, dict[str, Any]]:
        """The OperationDefinitions of the registered operations by id, in id order."""
        found = {s.definition["id"]: s.definition for s in self.operations.values()}
        return {k: found[k] for k in sorted(found)}

    def params_of(self, resource_type: str) -> list[SearchParamExtension]:
        """The extension search parameters of a resource type, by name."""
        return sorted(
            (e for (t, _), e in self.search_params.items() if t == resource_type), key=lambda e: e.name
        )

    def rewrite_search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> RewrittenSearch | None:
        """Replace the extension parameters of a search by one ``_id``; None when the search has none."""
        if not any((resource_type, n.split(":", 1)[0]) in self.search_params for n, _ in params):
            return None
        others: list[tuple[str, str]] = []
        replaced: list[tuple[str, str]] = []
        allowed: list[str] | None = None
        for name, value in params:
            code, _, modifier = name.partition(":")
            ext = self.search_params.get((resource_type, code))
            if ext is None and name != "_id":
                others.append((name, value))
                continue
            replaced.append((name, value))
            values = [unescape(v) for v in split_unescaped(value, ",")]
            if ext is None:
                found: list[str] = [v for v in values if v]
            else:
                found = _resolve(ext, name, modifier, values)
            allowed = list(dict.fromkeys(found)) if allowed is None else _intersect(allowed, found)
        ids = tuple(allowed or ())
        if ids:
            others.append(("_id", ",".join(_escape(i) for i in ids)))
        return RewrittenSearch(others, ids, replaced)


def _resolve(ext: SearchParamExtension, name: str, modifier: str, values: list[str]) -> list[str]:
    if any(not v for v in values):
        raise InvalidRequest(f"Empty value for search parameter '{name}'", expression=[name])
    found = ext.resolve(modifier, values)
    if found is None or len(found) > MAX_RESOLVED_IDS:
        raise TooCostly(
            f"Search parameter '{name}' matches too many {ext.resource_type} resources "
            f"(more than {MAX_RESOLVED_IDS}); add criteria to narrow the search",
            expression=[name],
        )
    return found


def _intersect(allowed: list[str], found: list[str]) -> list[str]:
    keep = set(found)
    return [i for i in allowed if i in keep]


def _escape(value: str) -> str:
    """Escape a value for a search parameter (the inverse of ``unescape``)."""
    for ch in ("\\", ",", "|", "$"):
        value = value.replace(ch, "\\" + ch)
    return value
