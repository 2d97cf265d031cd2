"""Character sets of inbound v2 messages: UTF-8 and GB 18030 / GBK, from MSH-18 or the connection.

Bytes are decoded before they are split: a two-byte GBK character can contain ``|``, ``^``, ``~`` or ``\\``.
Order of trust: the connection's configured charset, then UTF-8 when the bytes are valid UTF-8, then the
charset MSH-18 names (read from the raw header, whose delimiters are ASCII), then GB 18030 (a superset of
GBK and GB 2312). Nothing is decoded with replacement characters: bytes that are not valid UTF-8 although
the connection or MSH-18 says UTF-8, or that no candidate charset decodes, raise ``UndecodableBytes`` (the
intake answers AR, 102 at MSH-18, and keeps the bytes), since a guess could swallow a delimiter into a
multi-byte character and store garbled data.
"""

from __future__ import annotations

from rhip.core.errors import InvalidRequest

# MSH-18 values (HL7 table 0211 and what Chinese HIS send) → Python codec.
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "8859/1": "latin-1",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "GB 18030": "gb18030",
    "GBK": "gbk",
    "GB2312": "gb2312",
    "GB 2312": "gb2312",
    "CNS 11643-1992": "big5",
    "BIG5": "big5",
}


class UnknownCharset(InvalidRequest):
    """MSH-18 or the connection names a character set the platform does not decode."""

    code = "RHIP-V2-0002"


class UndecodableBytes(UnknownCharset):
    """The bytes are not text in the character set the connection or MSH-18 names (or in any candidate)."""


def codec_of(charset: str) -> str:
    """The Python codec of an MSH-18 value or a codec name; raises UnknownCharset."""
    key = charset.strip().upper()
    if key in CHARSETS:
        return CHARSETS[key]
    lowered = charset.strip().lower()
    if lowered in {"utf-8", "gbk", "gb18030", "gb2312", "latin-1", "ascii", "big5"}:
        return lowered
    raise UnknownCharset(f"unsupported character set {charset!r}")


def msh18_of(text: str) -> str:
    """MSH-18 read from decoded text (first repetition, first component), without parsing the message."""
    end = min((i for i in (text.find("\r"), text.find("\n")) if i >= 0), default=len(text))
    head = text[:end]
    if not head.startswith("MSH") or len(head) < 4:
        return ""
    parts = head.split(head[3])
    # parts[0] is "MSH", parts[1] MSH-2, so MSH-n is parts[n - 1].
    if len(parts) < 18:
        return ""
    value = parts[17]
    enc = parts[1]
    for sep in enc[:2]:
        value = value.split(sep, 1)[0]
    return value.strip()


def _undecodable(raw: bytes, codec: str, why: str) -> UndecodableBytes:
    try:
        raw.decode(codec)
        at = -1
    except UnicodeDecodeError as exc:
        at = exc.start
    where = f" (byte {at})" if at >= 0 else ""
    return UndecodableBytes(f"{why}{where}; send the message again in that character set")


def decode(raw: bytes, connection_charset: str | None = None) -> tuple[str, str]:
    """The text of a message and the codec that decoded it.

    Raises ``UnknownCharset`` for a charset the platform does not know, and ``UndecodableBytes`` when the
    bytes are not valid UTF-8 although the connection or MSH-18 says UTF-8, or when no candidate decodes them.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if connection_charset:
        codec = codec_of(connection_charset)
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            if codec == "utf-8":
                raise _undecodable(
                    raw, codec, "the bytes are not valid UTF-8 as the connection's setting says"
                ) from None
            # the connection's setting is wrong for this message: fall back to detection
    try:
        # Valid multi-byte UTF-8 is almost never GBK text (GBK pairs are rarely valid UTF-8): when the
        # bytes decode as UTF-8, they are UTF-8, whatever a misconfigured MSH-18 says.
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    fallback = "gb18030"
    declared = msh18_of(raw.decode("latin-1"))
    if declared:
        try:
            fallback = codec_of(declared)
        except UnknownCharset:
            fallback = "gb18030"
    if fallback == "utf-8":
        raise _undecodable(raw, "utf-8", "the bytes are not valid UTF-8 as MSH-18 says")
    if fallback == "ascii":
        fallback = "gb18030"
    for codec in dict.fromkeys((fallback, "gb18030")):
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise _undecodable(raw, fallback, f"the bytes are not valid {fallback.upper()} (nor UTF-8, nor GB 18030)")


def readable(raw: bytes) -> str:
    """Text to show a person (``rhip exchange show``, an ACK summary): decoded, or with U+FFFD for bad bytes."""
    try:
        return decode(raw)[0]
    except UnknownCharset:
        return raw.decode("utf-8", errors="replace")
