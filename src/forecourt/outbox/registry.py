"""Event handlers by topic: `@handles("order.paid")` registers an async handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

NAME_MAX = 80  # processed_events.handler


@dataclass(frozen=True)
class Event:
    """What a handler sees of an outbox event (read-only)."""

    id: int
    topic: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


HandlerFn = Callable[[AsyncSession, Event], Awaitable[None]]


@dataclass(frozen=True)
class Handler:
    """A registered handler; `name` is its stable identity in processed_events."""

    name: str
    topic: str
    fn: HandlerFn


class HandlerRegistry:
    """Topic -> handlers, in registration order."""

    def __init__(self) -> None:
        self._by_topic: dict[str, list[Handler]] = {}
        self._by_name: dict[str, Handler] = {}

    def handles(self, topic: str, *, name: str | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """Decorator: run the handler, in its own unit of work, for every event of `topic`."""

        def register(fn: HandlerFn) -> HandlerFn:
            self.add(topic, fn, name=name)
            return fn

        return register

    def add(self, topic: str, fn: HandlerFn, *, name: str | None = None) -> Handler:
        """Register `fn` for `topic`; the name defaults to module.qualname."""
        handler_name = name or f"{fn.__module__}.{fn.__qualname__}"
        if len(handler_name) > NAME_MAX:
            raise ValueError(f"handler name longer than {NAME_MAX}: pass name=... ({handler_name})")
        known = self._by_name.get(handler_name)
        if known is not None:
            if known.topic != topic:
                raise ValueError(f"handler {handler_name} already handles {known.topic}")
            # The same module imported again (e.g. reloaded): keep one entry, the newest.
            self._by_topic[topic].remove(known)
        handler = Handler(name=handler_name, topic=topic, fn=fn)
        self._by_name[handler_name] = handler
        self._by_topic.setdefault(topic, []).append(handler)
        return handler

    def for_topic(self, topic: str) -> list[Handler]:
        """The handlers of `topic` (empty when none)."""
        return list(self._by_topic.get(topic, ()))

    def topics(self) -> list[str]:
        """Every topic that has a handler."""
        return sorted(self._by_topic)


handlers = HandlerRegistry()
handles = handlers.handles
