"""HL7 v2 acknowledgements in original mode: an MSH answering the sender, MSA, and an ERR naming the field.

The answer is built from the message it acknowledges and the outcome only, so that a retransmission of the
same message gets the same bytes: the ACK's control id is derived from the sender and MSH-10, and MSH-7 is
the moment the outcome was decided (the commit of an accepted message, kept in its receipt).
ERR follows the message's version: ERR-1 (segment^sequence^field^code) for 2.1 to 2.4, ERR-2 to ERR-8 for
2.5 and later. The ACK is encoded in the character set the message came in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v2.message import DEFAULT_DELIMITERS, Delimiters, Message, escape

# HL7 table 0357 (message error condition codes).
HL7_ERROR_TEXT = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
ACK_CODES = frozenset({"AA", "AE", "AR"})
MSA3_MAX = 80  # MSA-3 (text message, 2.3/2.4) is 80 characters at most
ERR_TEXT_MAX = 400


@dataclass(frozen=True)
class AckError:
    """What went wrong, and where: the content of the ERR segment."""

    hl7_code: str  # HL7 table 0357
    text: str  # ERR-8 user message (and MSA-3 before 2.5)
    segment: str = ""  # segment id, e.g. PID
    sequence: int = 0  # occurrence of that segment in the message, from 1
    field: int = 0
    repetition: int = 0
    component: int = 0
    severity: str = "E"  # E error, W warning, I information
    rhip_code: str = ""  # the platform's stable code (ERR-5)


@dataclass(frozen=True)
class Header:
    """The MSH fields an acknowledgement answers, as sent (raw, still escaped)."""

    delimiters: Delimiters = DEFAULT_DELIMITERS
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""
    charset: str = ""

    @classmethod
    def of(cls, message: Message) -> Header:
        """The header of a parsed message."""
        msh = message.msh
        return cls(
            message.delimiters,
            msh.raw(3),
            msh.raw(4),
            msh.raw(5),
            msh.raw(6),
            message.trigger,
            msh.raw(10),
            msh.raw(11),
            msh.raw(12),
            msh.raw(18),
        )

    @classmethod
    def salvage(cls, text: str) -> Header:
        """Whatever header fields can be read from text that did not parse (empty ones otherwise)."""
        start = text.find("MSH")
        if start < 0 or len(text) < start + 8:
            return cls()
        line = text[start:].replace("\n", "\r").split("\r", 1)[0]
        if len(line) < 8:  # MSH, the field separator and four encoding characters on the MSH line itself
            return cls()
        fs = line[3]
        enc = line[4:8]
        if fs.isalnum() or fs.isspace() or len(set(fs + enc)) != 5 or any(c.isalnum() for c in enc):
            return cls()
        d = Delimiters(fs, enc[0], enc[1], enc[2], enc[3])
        parts = line.split(fs)
        fields = ["MSH", fs, *parts[1:]]

        def raw(n: int) -> str:
            # Only short, plain values are echoed from a message that did not parse.
            value = fields[n] if n < len(fields) else ""
            # U+FFFD stands for bytes that were not text (a header read as ASCII): not echoed.
            plain = value.isprintable() and "\ufffd" not in value
            return value if len(value) <= 200 and plain else ""

        msg_type = raw(9).split(d.component)
        trigger = msg_type[1].upper() if len(msg_type) > 1 else ""
        return cls(d, raw(3), raw(4), raw(5), raw(6), trigger[:3], raw(10), raw(11), raw(12), raw(18))

    @property
    def facility_code(self) -> str:
        """MSH-4.1, the sending institution's code."""
        return self.sending_facility.split(self.delimiters.component, 1)[0]

    @property
    def application_name(self) -> str:
        """MSH-3.1, the sending system."""
        return self.sending_application.split(self.delimiters.component, 1)[0]


def version_tuple(version: str) -> tuple[int, ...]:
    """``2.5.1`` → (2, 5, 1); unreadable versions count as 2.5."""
    head = version.split("^", 1)[0].strip()
    try:
        parts = tuple(int(p) for p in head.split(".") if p != "")
    except ValueError:
        return (2, 5)
    return parts if parts and parts[0] == 2 else (2, 5)


def ack_control_id(header: Header, raw: bytes = b"") -> str:
    """The ACK's MSH-10: the same for every retransmission of a message (20 characters, MSH-10's length)."""
    if header.control_id:
        key = f"{header.facility_code}|{header.application_name}|{header.control_id}".encode()
    else:
        key = b"raw|" + raw
    return "A" + hashlib.sha256(key).hexdigest()[:19].upper()


def hl7_time(moment: datetime, zone: ZoneInfo) -> str:
    """A v2 TS to the second with its offset, e.g. 20250308134800+0800."""
    return moment.astimezone(zone).strftime("%Y%m%d%H%M%S%z")


def build_ack(
    code: str,
    header: Header,
    *,
    at: datetime,
    zone: ZoneInfo,
    codec: str = "utf-8",
    error: AckError | None = None,
    raw: bytes = b"",
) -> bytes:
    """The acknowledgement ``code`` (AA, AE or AR) of a message with ``header``, encoded with ``codec``."""
    if code not in ACK_CODES:
        raise ValueError(f"unknown acknowledgement code {code!r}")
    d = header.delimiters
    version = version_tuple(header.version)
    fs = d.field
    trigger = header.trigger or ""
    msg_type = (
        f"ACK{d.component}{trigger}{d.component}ACK" if version >= (2, 3, 1) else f"ACK{d.component}{trigger}"
    )
    msh = [
        "MSH",
        d.encoding_characters,
        header.receiving_application or "RHIP",
        header.receiving_facility or "RHIP",
        header.sending_application,
        header.sending_facility,
        hl7_time(at, zone),
        "",
        msg_type,
        ack_control_id(header, raw),
        header.processing_id or "P",
        header.version or "2.5.1",
    ]
    if header.charset:
        msh += ["", "", "", "", "", header.charset]
    segments = [fs.join(msh)]
    msa = ["MSA", code, header.control_id]
    if error is not None and version < (2, 5):
        msa.append(escape(_clip(error.text, MSA3_MAX), d))
    segments.append(fs.join(msa))
    if error is not None:
        segments.append(_err(error, d, version))
    text = "\r".join(segments) + "\r"
    return text.encode(codec, errors="replace")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _err(error: AckError, d: Delimiters, version: tuple[int, ...]) -> str:
    description = HL7_ERROR_TEXT.get(error.hl7_code, "")
    text = escape(_clip(error.text, ERR_TEXT_MAX), d)
    if version < (2, 5):
        # ERR-1 (ELD): segment ^ sequence ^ field ^ code&text&HL70357
        sub = d.subcomponent
        eld = [
            error.segment,
            str(error.sequence) if error.segment and error.sequence else "",
            str(error.field) if error.field else "",
            sub.join([error.hl7_code, escape(description, d), "HL70357"]),
        ]
        return d.field.join(["ERR", d.component.join(eld)])
    location = ""
    if error.segment:
        parts = [error.segment, str(max(error.sequence, 1))]
        if error.field:
            parts += [str(error.field), str(max(error.repetition, 1))]
            if error.component:
                parts.append(str(error.component))
        location = d.component.join(parts)
    code = d.component.join([error.hl7_code, escape(description, d), "HL70357"])
    app_code = d.component.join([error.rhip_code, "", "99RHIP"]) if error.rhip_code else ""
    return d.field.join(["ERR", "", location, code, error.severity, app_code, "", "", text])
