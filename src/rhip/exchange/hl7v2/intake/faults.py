"""Logging a fault of the intake without the data that caused it.

An exception's message can quote the message being processed (a name, an ID number); the log gets the
exception's type and where it was raised, whatever formatter is configured.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any


def where(exc: BaseException, depth: int = 6) -> str:
    """The innermost ``depth`` frames of ``exc`` as ``file:line function``, innermost last."""
    frames = traceback.extract_tb(exc.__traceback__)[-depth:]
    return " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))


def log_fault(log: logging.Logger, what: str, exc: BaseException, **extra: Any) -> None:
    """Log ``what`` went wrong: the exception's type and frames, never its message."""
    log.error(what, extra={"error": type(exc).__qualname__, "trace": where(exc), **extra})
