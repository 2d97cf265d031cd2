"""The parsed form of a FHIR search: typed filters, sort keys, includes and result options.

Produced by :mod:`rhip.fhir.search.parse` from a query string and consumed by a repository, which
turns it into SQL (or evaluates it in memory). Filters in ``SearchQuery.filters`` are AND-ed; the values
inside one filter are OR-ed, as in the FHIR search specification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rhip.fhir.search.params import SearchParam


@dataclass(frozen=True, slots=True)
class StringValue:
    """A string search value; ``norm`` is the normalised form compared against the index."""

    text: str
    norm: str


@dataclass(frozen=True, slots=True)
class TokenValue:
    """``system|code``. ``system`` None: any system; "" : explicitly no system. ``code`` None: any code."""

    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class RangeValue:
    """A date (UTC epoch µs) or number with its prefix and the range the value stands for."""

    prefix: str
    low: float
    high: float
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class QuantityValue:
    """A quantity search value: a number range plus optional system and unit."""

    prefix: str
    low: float
    high: float
    value: float
    system: str | None
    unit: str | None


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """A reference search value: a local ``Type/id`` (type may be unknown) or an absolute/canonical url."""

    type: str | None
    id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UriValue:
    """A uri search value."""

    uri: str


Value = StringValue | TokenValue | RangeValue | QuantityValue | ReferenceValue | UriValue


@dataclass(frozen=True, slots=True)
class CompositeValue:
    """A composite value: the leading components as an index key, the last component typed."""

    key: str
    last: Value
    last_type: str


@dataclass(frozen=True, slots=True)
class ParamFilter:
    """One parameter with its modifier and OR-ed values, or a ``:missing`` test."""

    resource_type: str
    param: SearchParam
    modifier: str | None
    values: tuple[Value | CompositeValue, ...]
    missing: bool | None = None

    @property
    def negated(self) -> bool:
        """Whether matches are resources that do NOT have the values (``:not``, ``:missing=true``)."""
        return self.modifier == "not" or self.missing is True


@dataclass(frozen=True, slots=True)
class ChainFilter:
    """``subject:Patient.name=x``: resources whose reference points at a target matching an inner filter.

    ``targets`` pairs each possible target type with the filter on that type; the chain matches through
    any of them (``subject.name`` may go through Patient or Group).
    """

    resource_type: str
    param: SearchParam
    targets: tuple[tuple[str, Filter], ...]


@dataclass(frozen=True, slots=True)
class HasFilter:
    """``_has:Observation:patient:code=x``: resources referenced by a ``source_type`` matching ``inner``."""

    resource_type: str
    source_type: str
    param: SearchParam
    inner: Filter


@dataclass(frozen=True, slots=True)
class IdFilter:
    """``_id`` with OR-ed logical ids."""

    resource_type: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LastUpdatedFilter:
    """``_lastUpdated`` with OR-ed date ranges."""

    resource_type: str
    values: tuple[RangeValue, ...]


@dataclass(frozen=True, slots=True)
class CompartmentFilter:
    """Membership of a compartment: any of ``params`` references ``target_type/target_id``."""

    resource_type: str
    params: tuple[SearchParam, ...]
    target_type: str
    target_id: str


Filter = ParamFilter | ChainFilter | HasFilter | IdFilter | LastUpdatedFilter | CompartmentFilter


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ``_sort`` key: a parameter (or ``_id`` / ``_lastUpdated``) and its direction."""

    code: str
    param: SearchParam | None
    descending: bool


@dataclass(frozen=True, slots=True)
class IncludeSpec:
    """``_include=Source:param[:Target]`` or ``_revinclude``; ``params`` is several for ``Source:*``."""

    source_type: str
    params: tuple[SearchParam, ...]
    target_type: str | None
    iterate: bool
    text: str


@dataclass(frozen=True, slots=True)
class CareRelation:
    """Resources of ``reference.resource_type`` that tie their Patient to the caller put it in an access
    scope: a reference parameter naming one of the scope's Organizations, or a uri parameter (``_source``)
    holding one of its ``own_sources``; ``date`` (optional) must reach the scope's window."""

    reference: SearchParam
    date: SearchParam | None = None


@dataclass(frozen=True)
class AccessFilter:
    """The rows a caller may see, added to a search by the security layer and turned into SQL by the store.

    A resource is visible when it passes the compartment test and carries no hiding label:
    - compartment: resources outside every Patient compartment are visible when ``open_outside``
      (directories: Organization, Practitioner …); others when their Patient is in ``compartments``, or is
      related to the caller through ``relations`` (since ``since_us`` for dated relations), or when the
      resource itself came from the caller (``own_sources``); never when the Patient is in ``excluded``.
      ``everyone`` skips the compartment test (aggregates, the patient directory).
    - labels: a resource with a ``meta.security`` code in ``hidden_codes``, or with one of
      ``patient_hidden`` ((Patient id, code): a resident's consent), is hidden unless its ``meta.source`` is
      one of ``own_sources`` (what the caller's institution sent itself).
    """

    security_param: SearchParam  # _security of the searched type
    source_param: SearchParam  # _source of the searched type
    everyone: bool = False
    open_outside: bool = True
    compartments: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    relations: tuple[CareRelation, ...] = ()
    since_us: int | None = None
    until_us: int | None = None  # dated relations must also start before this (no open-ended future)
    excluded: tuple[str, ...] = ()
    hidden_codes: tuple[str, ...] = ()
    patient_hidden: tuple[tuple[str, str], ...] = ()
    own_sources: tuple[str, ...] = ()


@dataclass
class SearchQuery:
    """A complete type-level search."""

    resource_type: str
    filters: list[Filter] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    includes: list[IncludeSpec] = field(default_factory=list)
    revincludes: list[IncludeSpec] = field(default_factory=list)
    total: str | None = None  # none | estimate | accurate
    summary: str | None = None  # true | count | data | text | false
    elements: tuple[str, ...] | None = None
    page: str | None = None
    ignored: list[tuple[str, str]] = field(default_factory=list)
    # The parameters that were understood, in canonical form, for self and paging links.
    canonical: list[tuple[str, str]] = field(default_factory=list)
    # Row-level security added by rhip.security (never by a client's parameters).
    access: AccessFilter | None = None
