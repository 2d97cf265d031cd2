"""What an interaction handler gets (the message and the platform's services) and what it returns."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v3.datatypes import DOMAIN_ROOT, ORGANIZATION_ROOT
from rhip.exchange.hl7v3.errors import MissingElement, UnknownInstitution
from rhip.exchange.hl7v3.fhir import FhirGateway
from rhip.exchange.hl7v3.header import Header
from rhip.exchange.hl7v3.persons import PersonLinks
from rhip.exchange.hl7v3.xmlread import Element, child, find, ids, path_of
from rhip.exchange.ports import DocumentIntake, PatientMerger

SOURCE_CHANNEL = "v3"  # meta.source channel (urn:rhip:source:v3:<institution>)


@dataclass(frozen=True)
class Inbound:
    """One readable request: its header, its root element and its control act."""

    header: Header
    root: Element

    @property
    def act(self) -> Element:
        """``controlActProcess``; MissingElement when absent."""
        found = child(self.root, "controlActProcess")
        if found is None:
            where = f"{path_of(self.root)}/controlActProcess"
            raise MissingElement(f"{where} is required", location=where)
        return found


@dataclass(frozen=True)
class Accepted:
    """An AA acknowledgement (MCCI_IN000002UV01)."""

    text: str = "accepted"


@dataclass(frozen=True)
class Answered:
    """A query answer: its interaction and the ``controlActProcess`` that follows the acknowledgement."""

    interaction: str
    act: Element


Outcome = Accepted | Answered


@dataclass
class Context:
    """The services handlers use, wired once by the V3 service."""

    fhir: FhirGateway
    zone: ZoneInfo
    merger: PatientMerger | None = None
    documents: DocumentIntake | None = None
    persons: PersonLinks | None = None
    # Device id (2.16.156.10011.2.5.1.3) -> institution code, for senders whose messages name no institution.
    device_institutions: Mapping[str, str] = field(default_factory=dict)
    new_uuid: Callable[[], str] = lambda: str(uuid.uuid4())

    def institution(self, inbound: Inbound, *places: Element | None, required: bool = True) -> str:
        """The institution a message speaks for.

        Looked for in order: the payload's own organization ids (``places``, root 2.16.156.10011.1.5, or a
        domain id 2.16.156.10011.2.5.1.5), the sender device's represented organization, then the device map.
        """
        for place in places:
            for ii in ids(place):
                if ii.root in (ORGANIZATION_ROOT, DOMAIN_ROOT) and ii.extension:
                    return ii.extension
        header = inbound.header
        found = header.sender_institution or self.device_institutions.get(header.sender, "")
        if found or not required:
            return found
        raise UnknownInstitution(
            "the message does not say which institution it speaks for: give the organization id "
            "(root 2.16.156.10011.1.5), sender/device/asAgent/representedOrganization/id, or register the "
            f"sender device {header.sender or '(none)'} with its institution",
            location=path_of(places[0]) if places and places[0] is not None else path_of(inbound.root),
        )

    def source(self, institution: str) -> str:
        """``meta.source`` of what a message from ``institution`` stores."""
        return f"urn:rhip:source:{SOURCE_CHANNEL}:{institution}"

    def uuid_url(self) -> str:
        """A fresh ``urn:uuid:`` full URL for a transaction entry."""
        return f"urn:uuid:{self.new_uuid()}"


Handler = Callable[[Context, Inbound], Outcome]


def meta(ctx: Context, institution: str) -> dict[str, Any]:
    """The ``meta`` of a stored resource: its source, nothing else."""
    return {"source": ctx.source(institution)}


def first(element: Element | None, *paths: str) -> Element | None:
    """The first element found at any of ``paths``."""
    for path in paths:
        found = find(element, path)
        if found is not None:
            return found
    return None
