"""A tolerant HL7 v2 parser: segments, fields, repetitions, components and subcomponents by position.

Real messages begin with a byte-order mark, end segments with ``\\n`` or ``\\r\\n``, and carry trailing
empty fields or withdrawn components; they are parsed as they are ("parse tolerantly, answer strictly").
Positions follow the standard's numbering: ``PID-3`` is field 3 of PID, components and subcomponents count
from 1, and for MSH field 1 is the field separator itself, so MSH-9 is ``msh.field(9)`` as in the standard.

Values are split lazily: a mapper reading ten fields of a forty-field segment pays for those ten only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rhip.core.errors import InvalidRequest

SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


class V2ParseError(InvalidRequest):
    """The text is not an HL7 v2 message (no MSH, bad delimiters, malformed segment)."""

    code = "RHIP-V2-0001"

    def __init__(self, message: str, *, segment: str = "", sequence: int = 0, field: int = 0) -> None:
        super().__init__(message)
        self.segment = segment
        self.sequence = sequence
        self.field = field


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The encoding characters of a message (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as written back in an acknowledgement."""
        return self.component + self.repetition + self.escape + self.subcomponent


DEFAULT_DELIMITERS = Delimiters()

_ESCAPES = {"F": "field", "S": "component", "T": "subcomponent", "R": "repetition", "E": "escape"}


class Segment:
    """One segment: its name and its raw field strings, numbered as the standard numbers them."""

    __slots__ = ("delimiters", "fields", "name", "sequence")

    def __init__(self, name: str, fields: list[str], delimiters: Delimiters, sequence: int) -> None:
        self.name = name
        # fields[0] is the name; for MSH fields[1] is the field separator and fields[2] MSH-2.
        self.fields = fields
        self.delimiters = delimiters
        self.sequence = sequence  # 1-based position of the segment in the message

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, #{self.sequence})"

    def raw(self, field: int) -> str:
        """Field ``field`` exactly as sent (escapes and repetitions included); '' when absent."""
        return self.fields[field] if 0 < field < len(self.fields) else ""

    def repetitions(self, field: int) -> list[str]:
        """The raw repetitions of a field (MSH-2 is never split)."""
        raw = self.raw(field)
        if not raw:
            return []
        if self.name == "MSH" and field <= 2:
            return [raw]
        return raw.split(self.delimiters.repetition)

    def get(self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 0) -> str:
        """One value, unescaped; '' when any part is absent."""
        reps = self.repetitions(field)
        if repetition >= len(reps):
            return ""
        return component_of(reps[repetition], self.delimiters, component, subcomponent)

    def field_text(self, field: int) -> str:
        """The first repetition of a field as one unescaped string (components joined as sent)."""
        reps = self.repetitions(field)
        return unescape(reps[0], self.delimiters) if reps else ""

    def components(self, field: int, repetition: int = 0) -> list[str]:
        """The components of one repetition, each unescaped (subcomponents left joined)."""
        reps = self.repetitions(field)
        if repetition >= len(reps):
            return []
        return [unescape(c, self.delimiters) for c in reps[repetition].split(self.delimiters.component)]

    def field_count(self) -> int:
        """The highest field number present."""
        return len(self.fields) - 1


def component_of(raw: str, d: Delimiters, component: int = 1, subcomponent: int = 1) -> str:
    """Component ``component`` (and subcomponent) of one raw repetition, unescaped."""
    parts = raw.split(d.component)
    if component > len(parts):
        return ""
    value = parts[component - 1]
    if d.subcomponent in value:
        subs = value.split(d.subcomponent)
        value = subs[subcomponent - 1] if subcomponent <= len(subs) else ""
    elif subcomponent > 1:
        return ""
    return unescape(value, d) if d.escape in value else value


def unescape(value: str, d: Delimiters) -> str:
    """Replace the standard's escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\X..\\ \\.br\\) by their text."""
    if d.escape not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        end = value.find(d.escape, i + 1) if ch == d.escape else -1
        if end < 0:
            out.append(ch)
            i += 1
            continue
        seq = value[i + 1 : end]
        if seq in _ESCAPES:
            out.append(getattr(d, _ESCAPES[seq]))
        elif seq.startswith("X") and len(seq) % 2 == 1:
            try:
                out.append(bytes.fromhex(seq[1:]).decode("utf-8", "replace"))
            except ValueError:
                out.append(value[i : end + 1])
        elif seq == ".br":
            out.append("\n")
        elif seq.startswith((".", "H", "N", "C", "M", "Z")):
            pass  # formatting and character-set switches carry no text
        else:
            out.append(value[i : end + 1])
        i = end + 1
    return "".join(out)


def escape(value: str, d: Delimiters = DEFAULT_DELIMITERS) -> str:
    """Escape the delimiters in ``value`` so that it can be placed in a field."""
    if not any(
        c in value for c in (d.field, d.component, d.repetition, d.escape, d.subcomponent, "\r", "\n")
    ):
        return value
    out = value.replace(d.escape, f"{d.escape}E{d.escape}")
    for ch, code in ((d.field, "F"), (d.component, "S"), (d.subcomponent, "T"), (d.repetition, "R")):
        out = out.replace(ch, f"{d.escape}{code}{d.escape}")
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{d.escape}.br{d.escape}")


class Message:
    """A parsed message: its segments in order, with the header fields every receiver needs."""

    __slots__ = ("delimiters", "segments", "text")

    def __init__(self, text: str, segments: list[Segment], delimiters: Delimiters) -> None:
        self.text = text
        self.segments = segments
        self.delimiters = delimiters

    @property
    def msh(self) -> Segment:
        """The message header."""
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        """The first segment called ``name``."""
        for s in self.segments:
            if s.name == name:
                return s
        return None

    def all(self, name: str) -> list[Segment]:
        """Every segment called ``name``, in order."""
        return [s for s in self.segments if s.name == name]

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    # -- MSH ------------------------------------------------------------------------------------------
    @property
    def message_code(self) -> str:
        """MSH-9.1, e.g. ADT."""
        return self.msh.get(9, 1).upper()

    @property
    def trigger(self) -> str:
        """MSH-9.2, e.g. A01."""
        return self.msh.get(9, 2).upper()

    @property
    def structure(self) -> str:
        """MSH-9.3 when sent, e.g. ADT_A01."""
        return self.msh.get(9, 3).upper()

    @property
    def message_type(self) -> str:
        """``code^trigger``, e.g. ``ADT^A01``."""
        return f"{self.message_code}^{self.trigger}"

    @property
    def control_id(self) -> str:
        """MSH-10, the message control id."""
        return self.msh.get(10)

    @property
    def version(self) -> str:
        """MSH-12.1, e.g. 2.5.1."""
        return self.msh.get(12)

    @property
    def charset(self) -> str:
        """MSH-18 (first repetition), e.g. ``UNICODE UTF-8``; '' when not sent."""
        return self.msh.get(18)

    @property
    def sending_application(self) -> str:
        """MSH-3.1."""
        return self.msh.get(3)

    @property
    def sending_facility(self) -> str:
        """MSH-4.1, the institution code by the platform's convention."""
        return self.msh.get(4)

    @property
    def processing_id(self) -> str:
        """MSH-11.1: P production, T training, D debugging."""
        return self.msh.get(11)

    @property
    def accept_ack_type(self) -> str:
        """MSH-15 (enhanced mode); '' in original mode."""
        return self.msh.get(15)


def split_segments(text: str) -> list[str]:
    """The segment strings of a message: \\r, \\n or \\r\\n separated, blank lines dropped."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [s for s in text.split("\r") if s.strip()]


def parse(text: str) -> Message:
    """Parse one message; raises V2ParseError naming the segment and field that is wrong."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = split_segments(text)
    if not lines or not lines[0].startswith("MSH"):
        raise V2ParseError("the message does not begin with an MSH segment", segment="MSH", sequence=1)
    head = lines[0]
    if len(head) < 8:
        raise V2ParseError("the MSH segment is too short to hold its encoding characters", segment="MSH")
    fs = head[3]
    enc_end = head.find(fs, 4)
    enc = head[4:enc_end] if enc_end > 0 else head[4:]
    if len(enc) < 4 or fs.isalnum() or len(set(fs + enc[:4])) != len(enc[:4]) + 1:
        raise V2ParseError(
            "MSH-1 and MSH-2 do not define distinct encoding characters", segment="MSH", sequence=1, field=2
        )
    d = Delimiters(fs, enc[0], enc[1], enc[2], enc[3])
    if d == DEFAULT_DELIMITERS:
        d = DEFAULT_DELIMITERS
    segments: list[Segment] = []
    for seq, line in enumerate(lines, start=1):
        if seq == 1:
            parts = line.split(fs)
            fields = ["MSH", fs, *parts[1:]]
        else:
            fields = line.split(fs)
        name = fields[0].strip()
        if not SEGMENT_NAME.match(name):
            raise V2ParseError(f"segment {seq} has no valid segment name ({name[:10]!r})", sequence=seq)
        fields[0] = name
        segments.append(Segment(name, fields, d, seq))
    message = Message(text, segments, d)
    if not message.message_code or not message.trigger:
        raise V2ParseError("MSH-9 (message type) is empty", segment="MSH", sequence=1, field=9)
    if not message.control_id:
        raise V2ParseError("MSH-10 (message control id) is empty", segment="MSH", sequence=1, field=10)
    return message
