"""Structured logging without personal data.

Log records carry what happened (method, route kind, status, timings, error codes), never request
bodies, query strings, names, ID numbers or phone numbers. Exception messages can quote any of those
(a database driver's message quotes the value it refused, a parser's the text it could not read), so
both formatters write tracebacks with exception types and code locations only, and an exception passed
as a ``%s`` argument is written as its type name. Whatever still slips into a message or a field is caught
on the way out: both formatters mask ID numbers and mobile numbers (``5101**********1234``,
``138****5678``) and remove bearer tokens, JWTs, ``password=``-like pairs and URL passwords
(``rhip.security.masking``); a field named like a secret (``password``, ``client_secret``, ``token``) is
written as ``[redacted]``.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from rhip.security.masking import redact, redact_field

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}
WITHHELD = "(message withheld: it may hold personal data)"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _withheld(value: object) -> object:
    return _type_name(value) if isinstance(value, BaseException) else value


def safe_message(record: logging.LogRecord) -> str:
    """The record's message, with exceptions among its arguments reduced to their type names."""
    args = record.args
    if not args:
        return record.getMessage()
    if isinstance(args, Mapping):
        if not any(isinstance(v, BaseException) for v in args.values()):
            return record.getMessage()
        return str(record.msg) % {k: _withheld(v) for k, v in args.items()}
    if not any(isinstance(a, BaseException) for a in args):
        return record.getMessage()
    return str(record.msg) % tuple(_withheld(a) for a in args)


def redacted_traceback(exc: BaseException) -> str:
    """A traceback of ``exc`` and its causes with types and code locations, but no exception messages."""
    return "".join(_traceback_lines(exc, set(), "")).rstrip("\n")


def _traceback_lines(exc: BaseException, seen: set[int], indent: str) -> Iterator[str]:
    chain: list[tuple[BaseException, str]] = []
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = (
                current.__cause__,
                "The above exception was the direct cause of the following one:",
            )
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception, another occurred:"
        else:
            current = None
    # Oldest first, as Python prints them.
    for position, (item, _) in enumerate(reversed(chain)):
        if position:
            yield f"\n{indent}{chain[len(chain) - position][1]}\n\n"
        yield f"{indent}Traceback (most recent call last):\n"
        for line in traceback.format_list(traceback.extract_tb(item.__traceback__)):
            yield "".join(f"{indent}{part}\n" for part in line.rstrip("\n").split("\n"))
        yield f"{indent}{_type_name(item)}: {WITHHELD}\n"
        if isinstance(item, BaseExceptionGroup):
            for number, sub in enumerate(item.exceptions, 1):
                yield f"{indent}  +-- sub-exception {number}:\n"
                yield from _traceback_lines(sub, seen, indent + "  | ")


def _extras(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            yield key, redact_field(key, value)


def _message(record: logging.LogRecord) -> str:
    return redact(safe_message(record))


def _exception(record: logging.LogRecord) -> BaseException | None:
    info = record.exc_info
    return info[1] if info and info[1] is not None else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra={...}`` fields; tracebacks without messages."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": _message(record),
        }
        out.update(_extras(record))
        exc = _exception(record)
        if exc is not None:
            out["exc"] = redacted_traceback(exc)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value…``; tracebacks without messages."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one line (plus a traceback)."""
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {_message(record)}"
        extras = " ".join(f"{key}={value}" for key, value in _extras(record))
        if extras:
            line = f"{line} {extras}"
        exc = _exception(record)
        if exc is not None:
            line = f"{line}\n{redacted_traceback(exc)}"
        return line


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send rhip's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints query strings, which can hold names and ID numbers; rhip writes its own
    # (logger "rhip.access", rhip.web.app) with the route kind instead of the path.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every URL it requests, query string included, at INFO.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
