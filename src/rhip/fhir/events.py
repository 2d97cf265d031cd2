"""Events the FHIR store publishes for every change; written to the outbox in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from rhip.core.events import Event


@dataclass(frozen=True)
class ResourceChanged(Event):
    """Common shape of resource events."""

    resource_type: str
    id: str
    version: int
    compartment: str | None


@dataclass(frozen=True)
class ResourceCreated(ResourceChanged):
    """A resource was created (first version, or re-created after deletion)."""


@dataclass(frozen=True)
class ResourceUpdated(ResourceChanged):
    """A new version of an existing resource was stored."""


@dataclass(frozen=True)
class ResourceDeleted(ResourceChanged):
    """A resource was deleted (its history is kept)."""


EVENT_TYPES: dict[str, type[ResourceChanged]] = {
    cls.event_name(): cls for cls in (ResourceCreated, ResourceUpdated, ResourceDeleted)
}
