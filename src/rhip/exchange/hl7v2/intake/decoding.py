"""Which character set a message is read in: the sender's configured one, MSH-18, or the default.

Order: a charset configured for the peer address (the connection) wins; then one configured for the sending
facility (MSH-4, read after a first decoding, which MSH-4's plain ASCII code survives); then what the bytes
and MSH-18 say (``rhip.exchange.hl7v2.charset.decode``); then, for a message without MSH-18, the default.
Bytes that are not valid in the charset these name when it is UTF-8 (or in any candidate) raise
``UndecodableBytes``: the message is refused (AR), never stored garbled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rhip.exchange.hl7v2.charset import UndecodableBytes, decode, msh18_of


def msh4_of(text: str) -> str:
    """MSH-4.1 read from decoded text without parsing the message; '' when there is none."""
    end = min((i for i in (text.find("\r"), text.find("\n")) if i >= 0), default=len(text))
    head = text[:end]
    if not head.startswith("MSH") or len(head) < 8:
        return ""
    parts = head.split(head[3])
    if len(parts) < 4:
        return ""
    return parts[3].split(head[4], 1)[0].strip()


@dataclass(frozen=True)
class CharsetRules:
    """Configured character sets: ``by_sender`` maps a peer address or an MSH-4 code to a charset."""

    default: str | None = None
    by_sender: Mapping[str, str] = field(default_factory=dict)

    def decode(self, raw: bytes, peer: str = "") -> tuple[str, str]:
        """The text of a message and the codec that decoded it (raises UnknownCharset for a bad setting)."""
        configured = self.by_sender.get(peer) if peer else None
        if configured:
            return decode(raw, configured)
        failure: UndecodableBytes | None = None
        try:
            text, codec = decode(raw)
        except UndecodableBytes as exc:
            # MSH-4 and MSH-18 are plain ASCII: read them as such, a charset configured for them may fit.
            failure, text, codec = exc, raw.decode("latin-1"), ""
        if self.by_sender:
            facility = msh4_of(text)
            configured = self.by_sender.get(facility) if facility else None
            if configured:
                return decode(raw, configured)
        if self.default and not msh18_of(text):
            return decode(raw, self.default)
        if failure is not None:
            raise failure
        return text, codec
