"""What every v2 → FHIR mapper shares: its context, its result, its error, and the transaction it builds.

A mapper is pure: it reads one parsed message and returns a FHIR transaction Bundle (:class:`Mapped`) that
upserts by business identifier, so that processing a message twice creates nothing twice. Patients and
encounters go in by conditional update (``PUT Patient?identifier=…``), results and other records by
conditional create (``ifNoneExist``), the sending institution's Organization by conditional create, and
entries refer to each other by ``urn:uuid:`` full URLs. Full URLs are derived from what an entry *is*
(type and criteria), so two messages that carry the same entry (the institution's Organization) carry it
under the same full URL with the same content, and a batch of messages can keep one copy.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from rhip.core.errors import InvalidRequest
from rhip.exchange.hl7v2.datatypes import DataTypeError, organization_identifier, uri_name
from rhip.exchange.hl7v2.message import Message, Segment

Json = dict[str, Any]
_FULL_URL_NAMESPACE = uuid.UUID("6f1d7c52-2b0e-4c64-9a53-53b2c4f0e3a1")  # fixed: full URLs stay stable
_NAMESPACE_BYTES = _FULL_URL_NAMESPACE.bytes
_PLAIN = re.compile(r"^[A-Za-z0-9_.~:/|\\-]*$")  # what quote(…, safe=":/|\\") leaves as it is

# HL7 table 0357 (message error condition codes) -> the platform's stable error codes
HL7_ERROR_CODES = {
    "100": "RHIP-V2-0016",  # segment sequence error
    "101": "RHIP-V2-0011",  # required field missing
    "102": "RHIP-V2-0012",  # data type error
    "103": "RHIP-V2-0013",  # table value not found
    "200": "RHIP-V2-0014",  # unsupported message type
    "201": "RHIP-V2-0015",  # unsupported event code
    "207": "RHIP-V2-0010",  # application internal error (anything else a mapper refuses)
}


def source_uri(channel: str, institution: str) -> str:
    """``meta.source`` of what a message from ``institution`` created (its resources and its receipt)."""
    return f"urn:rhip:source:{channel}:{uri_name(institution)}"


@dataclass
class MappingContext:
    """What a mapper knows besides the message: who sent it, when it arrived, the local time zone."""

    institution: str  # MSH-4.1, the sending institution code
    received: str  # FHIR instant the message arrived
    zone: ZoneInfo  # for TS without offset (Asia/Shanghai)
    channel: str = "v2"

    @property
    def source(self) -> str:
        """``meta.source`` of every resource the message carries: ``urn:rhip:source:<channel>:<code>``."""
        return source_uri(self.channel, self.institution)


@dataclass
class Mapped:
    """A mapped message: its transaction and what the pipeline needs to batch, merge and acknowledge it."""

    bundle: Json  # FHIR transaction Bundle (type "transaction"), fullUrl urn:uuid:…
    locations: list[str]  # per bundle entry, the v2 location it came from: "PID", "OBX[3]"
    patient_keys: list[str]  # e.g. ["urn:rhip:mrn:510725H01|794248968212"]; sharing one: separate batches
    merges: list[tuple[str, str]] = field(default_factory=list)  # (surviving criteria, obsolete criteria)
    focus: list[str] = field(default_factory=list)  # fullUrls of the main resources (MessageHeader.focus)


class MappingError(InvalidRequest):
    """The message cannot be mapped: ``segment``/``sequence``/``field``/``component`` say where, ``hl7_code`` why.

    ``hl7_code`` is from HL7 table 0357 (101 required field missing, 102 data type error, 103 table value
    not found, 200 unsupported message type, 201 unsupported event code, 207 internal error); the stable
    platform code (RHIP-V2-0010 … 0016) follows from it. ``sequence`` is the segment's 1-based position
    in the message (0 when the segment is absent).
    """

    code = "RHIP-V2-0010"
    http_status = 422
    issue_type = "processing"

    def __init__(
        self,
        message: str,
        *,
        segment: str = "",
        sequence: int = 0,
        field: int = 0,
        component: int = 0,
        hl7_code: str = "207",
    ) -> None:
        where = f"{segment}-{field}" if segment and field else segment
        super().__init__(message, expression=[where] if where else [], code=HL7_ERROR_CODES.get(hl7_code))
        self.segment = segment
        self.sequence = sequence
        self.field = field
        self.component = component
        self.hl7_code = hl7_code


Mapper = Callable[[Message, MappingContext], Mapped]


def start(message: Message, ctx: MappingContext) -> BundleBuilder:
    """A builder for the message's transaction; MappingError 101 when the sender (MSH-4) is unknown."""
    if not ctx.institution:
        raise MappingError(
            "MSH-4 (sending facility, the institution code) is empty",
            segment="MSH",
            sequence=1,
            field=4,
            hl7_code="101",
        )
    return BundleBuilder(ctx, message)


# -- reading fields -------------------------------------------------------------------------------


def required_segment(message: Message, name: str) -> Segment:
    """The first ``name`` segment; MappingError 100 (segment missing) when there is none."""
    seg = message.first(name)
    if seg is None:
        raise MappingError(
            f"the {message.message_type} message has no {name} segment", segment=name, hl7_code="100"
        )
    return seg


def required(seg: Segment, field: int, what: str, component: int = 1) -> str:
    """A field's value (component ``component``); MappingError 101 naming the field when empty."""
    value = seg.get(field, component).strip()
    if not value:
        raise missing(seg, field, what, component)
    return value


def missing(seg: Segment, field: int, what: str, component: int = 0) -> MappingError:
    """MappingError 101 for a required field that is empty."""
    where = f"{seg.name}-{field}" + (f".{component}" if component > 1 else "")
    return MappingError(
        f"{where} ({what}) is required and empty",
        segment=seg.name,
        sequence=seg.sequence,
        field=field,
        component=component,
        hl7_code="101",
    )


class reading:
    """Turn a DataTypeError raised while reading ``seg``-``field`` into a MappingError naming it."""

    __slots__ = ("field", "seg")

    def __init__(self, seg: Segment, field: int) -> None:
        self.seg = seg
        self.field = field

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(error, DataTypeError):
            seg = self.seg
            raise MappingError(
                f"{seg.name}-{self.field}: {error}",
                segment=seg.name,
                sequence=seg.sequence,
                field=self.field,
                hl7_code=error.hl7_code,
            ) from error


def location(message: Message, seg: Segment) -> str:
    """``PID`` for the first segment of its name, ``OBX[3]`` for the third."""
    n = 0
    for s in message.segments:
        if s.name == seg.name:
            n += 1
        if s is seg:
            break
    return seg.name if n == 1 else f"{seg.name}[{n}]"


# -- search criteria ------------------------------------------------------------------------------


def _escape_token(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


def token(system: str, value: str) -> str:
    """``system|value`` as a search value, escaped and percent-encoded for a request URL."""
    text = f"{_escape_token(system)}|{_escape_token(value)}"
    return text if _PLAIN.match(text) else quote(text, safe=":/|\\")


def identifier_criteria(identifier: Json) -> str:
    """``identifier=system|value`` criteria for an Identifier."""
    return "identifier=" + token(str(identifier.get("system", "")), str(identifier["value"]))


def entry_identifier(institution: str, *parts: str) -> Json:
    """The identifier of a record the message gives no id of its own (a DG1, an AL1, an NK1).

    System ``urn:rhip:v2-entry:<institution>``, value its parts joined by ``/`` (the visit number or the
    patient's local id first, then the segment and what tells the record apart), so that the same record
    sent again is found again.
    """
    return {"system": f"urn:rhip:v2-entry:{uri_name(institution)}", "value": "/".join(parts)}


def key(identifier: Json) -> str:
    """An Identifier as ``system|value`` (a patient key of :class:`Mapped`)."""
    return f"{identifier.get('system', '')}|{identifier['value']}"


# -- the transaction ------------------------------------------------------------------------------


class BundleBuilder:
    """Collects the entries of one message's transaction, with their v2 locations."""

    def __init__(self, ctx: MappingContext, message: Message) -> None:
        self.ctx = ctx
        self.message = message
        self.entries: list[Json] = []
        self.locations: list[str] = []
        self.focus: list[str] = []
        self._by_url: dict[str, int] = {}

    def _full_url(self, identity: str) -> str:
        return full_url_of(identity)

    def _stamp(self, resource: Json) -> Json:
        rest = {k: v for k, v in resource.items() if k not in ("resourceType", "meta", "id")}
        return {"resourceType": resource["resourceType"], "meta": {"source": self.ctx.source}, **rest}

    def _add(self, full_url: str, resource: Json, request: Json, where: str, focus: bool) -> str:
        if full_url in self._by_url:  # the same resource twice in one message: the later one wins
            index = self._by_url[full_url]
            self.entries[index] = {"fullUrl": full_url, "resource": self._stamp(resource), "request": request}
        else:
            self._by_url[full_url] = len(self.entries)
            self.entries.append({"fullUrl": full_url, "resource": self._stamp(resource), "request": request})
            self.locations.append(where)
        if focus and full_url not in self.focus:
            self.focus.append(full_url)
        return full_url

    def put(self, resource: Json, criteria: str, where: str, *, focus: bool = False) -> str:
        """A conditional update ``PUT Type?criteria`` (creates when nothing matches); returns the fullUrl."""
        url = f"{resource['resourceType']}?{criteria}"
        return self._add(self._full_url(url), resource, {"method": "PUT", "url": url}, where, focus)

    def create(self, resource: Json, criteria: str, where: str, *, focus: bool = False) -> str:
        """A conditional create (``ifNoneExist: criteria``): nothing new when a match exists."""
        rtype = resource["resourceType"]
        request = {"method": "POST", "url": rtype, "ifNoneExist": criteria}
        return self._add(self._full_url(f"{rtype}?{criteria}"), resource, request, where, focus)

    def organization(self, code: str | None = None) -> str:
        """The Organization of an institution (default: the sender) by conditional create; its fullUrl."""
        ident = organization_identifier(code or self.ctx.institution)
        resource = {"resourceType": "Organization", "identifier": [ident], "active": True}
        return self.create(resource, identifier_criteria(ident), "MSH")

    def mapped(self, patient_keys: Iterable[str], merges: Iterable[tuple[str, str]] = ()) -> Mapped:
        """The finished transaction."""
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}
        return Mapped(
            bundle, list(self.locations), list(dict.fromkeys(patient_keys)), list(merges), self.focus
        )


def full_url_of(identity: str) -> str:
    """``urn:uuid:`` + the name-based (version 5) UUID of ``identity``, as ``uuid.uuid5`` gives it, faster."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + identity.encode(), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def reference(full_url: str, display: str | None = None) -> Json:
    """A Reference to another entry of the transaction."""
    ref: Json = {"reference": full_url}
    if display:
        ref["display"] = display
    return ref
