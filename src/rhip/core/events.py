"""Events: the typed facts that capabilities publish and others react to, and the bus port."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar


@dataclass(frozen=True)
class Event:
    """Base of every event. ``name`` is the stable name used in the outbox."""

    @classmethod
    def event_name(cls) -> str:
        """The name under which the event is stored and routed."""
        return cls.__name__


E = TypeVar("E", bound=Event)
Handler = Callable[[Event], None]


class EventBus(Protocol):
    """Where events are published. Implementations: in-process (tests, sync hooks) and the DB outbox."""

    def publish(self, event: Event) -> None:
        """Deliver or enqueue one event."""


class InProcessEventBus:
    """Delivers events synchronously to subscribers registered by event class."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = defaultdict(list)

    def subscribe(self, event_type: type[Event], handler: Handler) -> None:
        """Call ``handler`` for every published event of ``event_type``."""
        self._handlers[event_type].append(handler)

    def publish(self, event: Event) -> None:
        """Deliver one event to every subscriber of its class."""
        for handler in self._handlers.get(type(event), ()):
            handler(event)
