"""The HL7 v2 intake: decode → parse → dedupe → map → store (many messages a transaction) → acknowledge.

``V2Pipeline.process`` takes the messages gathered from every connection in the last few milliseconds and
answers each: AA once its data and its receipt (a MessageHeader) are committed; the same ACK again for a
retransmission, found by the receipt or, for a refused message, in the rejects store; AE or AR with an ERR
segment naming the field otherwise, the message kept in the rejects store with its raw bytes. It never
raises: whatever goes wrong with one message is that message's AE, and the others are stored all the same.
The asynchronous front that gathers the messages is ``rhip.exchange.hl7v2.intake.batcher``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rhip.core.clock import fhir_instant
from rhip.core.errors import RhipError
from rhip.exchange.hl7v2.ack import Header, build_ack
from rhip.exchange.hl7v2.charset import UnknownCharset
from rhip.exchange.hl7v2.intake.compose import Ready, compose, conflict_keys, plan
from rhip.exchange.hl7v2.intake.decoding import CharsetRules
from rhip.exchange.hl7v2.intake.errors import (
    InternalError,
    MalformedFrame,
    MergeFailed,
    NotAuthorised,
    ReplayRefused,
    RequiredFieldMissing,
    UnsupportedMessageType,
    UnsupportedProcessingId,
    UnsupportedVersion,
)
from rhip.exchange.hl7v2.intake.faults import log_fault
from rhip.exchange.hl7v2.intake.known import KnownResources
from rhip.exchange.hl7v2.intake.messages import Answer, Inbound
from rhip.exchange.hl7v2.intake.receipt import committed_receipts, instant, message_header, receipt_id
from rhip.exchange.hl7v2.intake.refusal import CHANNEL, Refuser, RejectsPort, ack_code_of
from rhip.exchange.hl7v2.intake.refused import RefusedBefore
from rhip.exchange.hl7v2.intake.storing import Transactor, resolve_merges, store_error
from rhip.exchange.hl7v2.mapping.base import MappingContext
from rhip.exchange.hl7v2.message import Message, parse
from rhip.exchange.ports import PatientMerger
from rhip.exchange.rejects import Rejected
from rhip.fhir.rest.service import FhirService
from rhip.security.context import acting_as, maybe_principal
from rhip.security.principal import Principal, Role
from rhip.security.scopes import parse_scopes

__all__ = ["Answer", "Inbound", "PipelineConfig", "V2Pipeline"]
log = logging.getLogger("rhip.exchange.v2")

PROCESSING_IDS = frozenset({"P", "T", "D", ""})


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the intake."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    charsets: CharsetRules = field(default_factory=CharsetRules)
    channel: str = "v2"  # meta.source channel of the stored resources
    max_bundle_entries: int = 10_000


@dataclass
class _Work:
    position: int
    item: Inbound
    codec: str
    message: Message
    header: Header
    rid: str
    received: datetime


Mapper = Callable[[Message, MappingContext], Any]


def default_mappers() -> Mapping[str, Mapper]:
    """The registry of v2 mappers (``rhip.exchange.hl7v2.mapping.MAPPERS``)."""
    from rhip.exchange.hl7v2.mapping import MAPPERS

    return MAPPERS


class V2Pipeline:
    """Turns batches of inbound v2 messages into stored FHIR data and acknowledgements."""

    def __init__(
        self,
        fhir: FhirService,
        rejects: RejectsPort,
        config: PipelineConfig | None = None,
        *,
        mappers: Mapping[str, Mapper] | None = None,
        merger: PatientMerger | None = None,
    ) -> None:
        self.fhir = fhir
        self.rejects = rejects
        self.config = config or PipelineConfig()
        self.mappers = mappers if mappers is not None else default_mappers()
        self.merger = merger
        self.transactor = Transactor(fhir)
        self.known = KnownResources(fhir)
        self.refused = RefusedBefore(rejects)
        self.refuser = Refuser(rejects, self.refused, self.config.charsets, self.config.zone)
        self.known_codes = frozenset(k.split("^", 1)[0] for k in self.mappers)
        self._one_at_a_time = threading.Lock()

    # -- the batch ------------------------------------------------------------------------------------
    def process(self, items: Sequence[Inbound]) -> list[Answer]:
        """The answer to each message of ``items``, in order; never raises.

        One batch at a time: batches of one pipeline never overlap (a later batch must see what an
        earlier one committed, and the caches of known resources and refused messages are not shared).
        """
        with self._one_at_a_time:
            return self._batch(items)

    def _batch(self, items: Sequence[Inbound]) -> list[Answer]:
        answers: list[Answer | None] = [None] * len(items)
        try:
            self._process(items, answers)
        except Exception as exc:
            log_fault(log, "v2 batch failed", exc)
        for i, answer in enumerate(answers):
            if answer is None:
                answers[i] = self.refuser.unread(
                    items[i], InternalError("internal error; it has been logged")
                )
        return [a for a in answers if a is not None]

    def _process(self, items: Sequence[Inbound], answers: list[Answer | None]) -> None:
        try:
            self.refused.refresh()
        except Exception as exc:
            log_fault(log, "v2 rejects lookup failed", exc)
        works: list[_Work] = []
        deferred: list[_Work] = []
        seen: set[str] = set()
        for position, item in enumerate(items):
            work = self._read(position, item, answers)
            if work is None:
                continue
            # The same message twice in one batch: the second waits for the first's outcome.
            (deferred if work.rid in seen else works).append(work)
            seen.add(work.rid)
        if not works:
            return
        with acting_as(self._acting(works)):
            self._process_read(works, deferred, answers)

    def _acting(self, works: list[_Work]) -> Principal:
        """Whom the batch's reads and writes run as: the caller that set one (an operator's replay), or the
        institutions whose messages it carries, each already allowed for its connection (see ``_read``)."""
        outer = maybe_principal()
        if outer is not None:
            return outer
        institutions = sorted({w.header.facility_code for w in works})
        senders = sorted({w.item.sender for w in works if w.item.sender})
        return Principal(
            subject=f"mllp:{senders[0] if len(senders) == 1 else 'batch'}",
            role=Role.SYSTEM,
            scopes=parse_scopes("system/*.cruds"),
            institution=institutions[0] if len(institutions) == 1 else None,
            institutions=tuple(institutions),
            purpose="TREAT",
        )

    def _process_read(self, works: list[_Work], deferred: list[_Work], answers: list[Answer | None]) -> None:
        works = self._answer_repeats(works, answers)
        ready = [r for r in (self._map(w, answers) for w in works) if r is not None]
        by_position = {w.position: w for w in works}
        for group in plan(ready, self.config.max_bundle_entries):
            self._store(group, by_position, answers)
        if deferred:
            later = self._batch([w.item for w in deferred])
            for w, answer in zip(deferred, later, strict=True):
                answers[w.position] = answer

    def _read(self, position: int, item: Inbound, answers: list[Answer | None]) -> _Work | None:
        """Decode, parse and check the header; an answer instead when the message cannot be taken."""
        codec, header = "utf-8", Header()
        try:
            try:
                text, codec = self.config.charsets.decode(item.raw, item.peer)
            except UnknownCharset:
                # Not text in its charset: the ASCII of its header still names the control id to answer.
                header = Header.salvage(item.raw.decode("ascii", "replace"))
                raise
            header = Header.salvage(text)
            if item.frame_problem:
                raise MalformedFrame(_FRAME_PROBLEMS.get(item.frame_problem, "malformed MLLP frame"))
            message = parse(text)
            header = Header.of(message)
            self._check_header(message, header)
            if item.institutions is not None and header.facility_code not in item.institutions:
                raise NotAuthorised(
                    f"this connection may not send for institution {header.facility_code[:40]!r} (MSH-4)",
                    segment="MSH",
                    sequence=1,
                    field=4,
                )
        except Exception as exc:
            if not _expected(exc):
                log_fault(log, "v2 message could not be read", exc)
            answers[position] = self.refuser.answer(item, header, codec, exc)
            return None
        rid = receipt_id(header.facility_code, header.application_name, message.control_id)
        received = item.received or datetime.now(UTC)
        return _Work(position, item, codec, message, header, rid, received)

    def _check_header(self, message: Message, header: Header) -> None:
        if not message.version.startswith("2."):
            raise UnsupportedVersion(
                f"HL7 version {message.version[:20]!r} is not supported; send 2.3 to 2.5.1",
                segment="MSH",
                sequence=1,
                field=12,
            )
        if message.processing_id.upper() not in PROCESSING_IDS:
            raise UnsupportedProcessingId(
                f"processing id {message.processing_id[:10]!r} is not P, T or D",
                segment="MSH",
                sequence=1,
                field=11,
            )
        if not header.facility_code:
            raise RequiredFieldMissing(
                "MSH-4 (sending facility) must carry the institution code", segment="MSH", sequence=1, field=4
            )
        if message.message_type not in self.mappers:
            raise UnsupportedMessageType(
                f"message type {message.message_type[:20]} is not supported",
                known_code=message.message_code in self.known_codes,
            )

    def _answer_repeats(self, works: list[_Work], answers: list[Answer | None]) -> list[_Work]:
        """Answer retransmissions as before; the messages that are new."""
        fresh = [w for w in works if w.item.replay]
        lookup = [w for w in works if not w.item.replay]
        if not lookup:
            return fresh
        try:
            committed = committed_receipts(self.fhir, [w.rid for w in lookup])
        except Exception as exc:
            log_fault(log, "v2 receipt lookup failed", exc)
            for w in lookup:
                answers[w.position] = self.refuser.answer(w.item, w.header, w.codec, exc)
            return fresh
        for w in lookup:
            # An open reject first: a message stored but not merged (A40) was answered AE, and is again.
            try:
                stored = self.refused.answer(
                    w.header.facility_code, w.header.application_name, w.message.control_id
                )
            except Exception as exc:
                log_fault(log, "v2 rejects lookup failed", exc)
                answers[w.position] = self.refuser.answer(w.item, w.header, w.codec, exc)
                continue
            at = committed.get(w.rid)
            if stored is not None:
                answers[w.position] = Answer(
                    stored, ack_code_of(stored), w.message.control_id, duplicate=True
                )
            elif at is not None:
                ack = build_ack("AA", w.header, at=at, zone=self.config.zone, codec=w.codec)
                answers[w.position] = Answer(ack, "AA", w.message.control_id, duplicate=True)
            else:
                fresh.append(w)
        return sorted(fresh, key=lambda w: w.position)

    def _map(self, w: _Work, answers: list[Answer | None]) -> Ready | None:
        """The message mapped to FHIR entries plus its receipt; None (and an answer) when it cannot be."""
        try:
            mapper = self.mappers[w.message.message_type]
            context = MappingContext(
                institution=w.header.facility_code,
                received=fhir_instant(w.received),
                zone=self.config.zone,
                channel=self.config.channel,
            )
            mapped = mapper(w.message, context)
            entries = list(mapped.bundle.get("entry") or [])
            locations = list(mapped.locations) + [""] * (len(entries) - len(mapped.locations))
            receipt = message_header(
                w.rid,
                facility=w.header.facility_code,
                application=w.header.application_name,
                control_id=w.message.control_id,
                message_type=w.message.message_type,
                trigger=w.message.trigger,
                focus=list(getattr(mapped, "focus", []) or []),
                channel=self.config.channel,
            )
            entries.append(
                {"resource": receipt, "request": {"method": "PUT", "url": f"MessageHeader/{w.rid}"}}
            )
            locations.append("MSH")
            keys = conflict_keys(list(mapped.patient_keys), entries)
            return Ready(w.position, entries, locations, keys, list(getattr(mapped, "merges", []) or []))
        except Exception as exc:
            if not _expected(exc):
                log_fault(log, "v2 mapping failed", exc, message_type=w.message.message_type[:20])
            answers[w.position] = self.refuser.answer(w.item, w.header, w.codec, exc, w.message)
            return None

    # -- storing --------------------------------------------------------------------------------------
    def _store(self, group: list[Ready], works: dict[int, _Work], answers: list[Answer | None]) -> None:
        """Commit a group in one transaction; when that fails, each message on its own."""
        try:
            self.known.prune(group)  # after the groups before it committed: it sees what they changed
        except Exception as exc:
            log_fault(log, "v2 known-resource check failed", exc)
        if len(group) > 1:
            composed = compose(group)
            result = self.transactor.run(composed.bundle)
            if result.ok:
                for r, where in zip(group, composed.positions, strict=True):
                    self._accepted(r, works[r.position], [result.entries[i] for i in where], answers)
                return
        for r in group:
            composed = compose([r])
            result = self.transactor.run(composed.bundle)
            if result.status == 409:  # a concurrent writer touched the same resource: once more
                result = self.transactor.run(composed.bundle)
            w = works[r.position]
            if result.ok:
                self._accepted(r, w, [result.entries[i] for i in composed.positions[0]], answers)
            else:
                self.known.forget(r)
                error = store_error(result, composed.positions[0], r.locations)
                answers[r.position] = self.refuser.answer(w.item, w.header, w.codec, error)

    def _accepted(
        self, r: Ready, w: _Work, responses: list[dict[str, Any]], answers: list[Answer | None]
    ) -> None:
        """Acknowledge a committed message (after its merges, if it asked for any)."""
        self.known.remember(r, responses)
        if r.merges:
            try:
                if self.merger is None:
                    raise MergeFailed("the platform has no master patient index to merge the patients in")
                for surviving, obsolete in resolve_merges(
                    self.fhir, r.merges, r.entries, responses, r.resolved
                ):
                    self.merger.merge(surviving, obsolete, actor=f"v2:{w.header.facility_code}")
            except Exception as exc:
                if not _expected(exc):
                    log_fault(log, "v2 merge failed", exc)
                    exc = MergeFailed(
                        "the data is stored, but the patients could not be merged; replay to retry"
                    )
                answers[w.position] = self.refuser.answer(w.item, w.header, w.codec, exc)
                return
        at = instant(str(responses[-1].get("lastModified") or fhir_instant(datetime.now(UTC))))
        ack = build_ack("AA", w.header, at=at, zone=self.config.zone, codec=w.codec)
        answers[w.position] = Answer(ack, "AA", w.message.control_id)

    # -- replay ---------------------------------------------------------------------------------------
    def replay(self, reject: Rejected, resolve: Callable[[int], None]) -> Answer:
        """Run a kept message through the pipeline again; ``resolve(id)`` marks it replayed when accepted.

        Raises ReplayRefused for a reject of another channel, one no longer open, and a frame that arrived
        incomplete (only part of it is kept).
        """
        if reject.channel != CHANNEL:
            raise ReplayRefused(f"reject {reject.id} came through {reject.channel}, not MLLP")
        if reject.status != "open":
            raise ReplayRefused(f"reject {reject.id} is {reject.status}, not open")
        if reject.reason_code == MalformedFrame.code:
            # Only part of the message was kept (the first bytes of an oversized frame, what arrived of a cut
            # off one): running it again would store truncated data and answer AA.
            raise ReplayRefused(
                f"reject {reject.id}: the frame was incomplete (cut off or over the size limit) and only part"
                " of it was kept, so it cannot be replayed; ask the sender to resend the message"
            )
        if reject.reason_code == NotAuthorised.code or reject.reason_code.startswith("RHIP-SEC-"):
            # Refused because of who sent it: replaying as the operator would store it in the name of an
            # institution the sender may not speak for. The sender resends from an authorised connection.
            raise ReplayRefused(
                f"reject {reject.id} was refused because its sender may not send for its institution; it"
                " cannot be replayed: the institution resends it over its own authorised connection"
            )
        answer = self.process([Inbound(bytes(reject.raw), replay=True)])[0]
        if answer.code == "AA":
            resolve(int(reject.id))
            return replace(answer, reject_id=int(reject.id))
        return answer


_FRAME_PROBLEMS = {
    "oversized": "the MLLP frame is larger than the limit of the listener",
    "unterminated": "the MLLP frame was cut off: a new frame began before its end block (0x1C 0x0D)",
}


def _expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a refusal of the message (logged briefly) rather than a fault (logged fully)."""
    return isinstance(exc, RhipError) and not isinstance(exc, InternalError)
