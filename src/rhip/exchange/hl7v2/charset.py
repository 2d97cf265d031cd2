"""Character sets of inbound v2 messages: UTF-8 and GB 18030 / GBK, from MSH-18 or the connection.

Bytes are decoded before they are split: a two-byte GBK character can contain ``|``, ``^``, ``~`` or ``\\``.
Order of trust: the connection's configured charset, then UTF-8 when the bytes are valid UTF-8, then the
charset MSH-18 names (read from the raw header, whose delimiters are ASCII), then GB 18030 (a superset of
GBK and GB 2312).
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


def decode(raw: bytes, connection_charset: str | None = None) -> tuple[str, str]:
    """The text of a message and the codec that decoded it."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if connection_charset:
        codec = codec_of(connection_charset)
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            pass  # the connection's setting is wrong for this message: fall back to detection
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
    if fallback in ("utf-8", "ascii"):
        fallback = "gb18030"
    try:
        return raw.decode(fallback), fallback
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace"), "gb18030"
