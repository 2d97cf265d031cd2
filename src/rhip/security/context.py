"""The principal of the work running now (a request, a message), carried in a context variable.

Each door sets it around the work it does for a caller (``with acting_as(principal): ...``), in the thread
that does the work; the secured repository reads it on every call and refuses to work without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace

from rhip.core.errors import Unauthenticated
from rhip.security.principal import Principal

_current: ContextVar[Principal | None] = ContextVar("rhip_principal", default=None)
_glass: ContextVar[str | None] = ContextVar("rhip_break_glass", default=None)


@contextmanager
def acting_as(principal: Principal, *, break_glass_reason: str | None = None) -> Iterator[Principal]:
    """Run the block as ``principal`` (optionally breaking the glass with a stated reason)."""
    token = _current.set(principal)
    glass = _glass.set(break_glass_reason)
    try:
        yield principal
    finally:
        _glass.reset(glass)
        _current.reset(token)


def act_for_process(principal: Principal) -> None:
    """Make ``principal`` the caller of everything this thread does from now on (a command-line process
    run by an operator); never in a server, whose work must each name its own caller."""
    _current.set(principal)


def current_principal() -> Principal:
    """The principal of the running work; raises Unauthenticated when no door set one."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("No credentials: this request needs a bearer token")
    return principal


def maybe_principal() -> Principal | None:
    """The principal of the running work, or None."""
    return _current.get()


def break_glass_reason() -> str | None:
    """The reason given for breaking the glass in this request, if any."""
    return _glass.get()


def with_purpose(principal: Principal, purpose: str) -> Principal:
    """The same principal acting for another purpose of use."""
    return replace(principal, purpose=purpose)
