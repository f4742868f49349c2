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
LightFn = Callable[[Event], Awaitable[None]]
When = Callable[[Event], bool]


@dataclass(frozen=True)
class Handler:
    """A durable handler: its own unit of work, at most once (its processed_events marker)."""

    name: str
    topic: str
    fn: HandlerFn
    when: When | None = None


@dataclass(frozen=True)
class LightHandler:
    """A handler without unit of work or marker: it may run more than once, so idempotent."""

    name: str
    topic: str
    fn: LightFn
    when: When | None = None


AnyHandler = Handler | LightHandler


class HandlerRegistry:
    """Topic -> handlers, in registration order."""

    def __init__(self) -> None:
        self._by_topic: dict[str, list[AnyHandler]] = {}
        self._by_name: dict[str, AnyHandler] = {}

    def handles(
        self, topic: str, *, name: str | None = None, when: When | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        """Decorator: run the handler, in its own unit of work, for the events of `topic`.

        `when`: run it only for the events this accepts (checked before any database work;
        the others count as skipped).
        """

        def register(fn: HandlerFn) -> HandlerFn:
            self.add(topic, fn, name=name, when=when)
            return fn

        return register

    def handles_light(
        self, topic: str, *, name: str | None = None, when: When | None = None
    ) -> Callable[[LightFn], LightFn]:
        """Decorator: run `fn(event)` for the events of `topic` with no database work at all.

        No unit of work and no processed_events marker: a redelivery or a retry of the event
        (another handler failed) runs it again, so it must be idempotent.
        """

        def register(fn: LightFn) -> LightFn:
            self.add_light(topic, fn, name=name, when=when)
            return fn

        return register

    def add(
        self, topic: str, fn: HandlerFn, *, name: str | None = None, when: When | None = None
    ) -> Handler:
        """Register `fn` for `topic`; the name defaults to module.qualname."""
        handler = Handler(name=_name(fn, name), topic=topic, fn=fn, when=when)
        self._register(handler)
        return handler

    def add_light(
        self, topic: str, fn: LightFn, *, name: str | None = None, when: When | None = None
    ) -> LightHandler:
        """Register a light `fn` (no session, no marker) for `topic`."""
        handler = LightHandler(name=_name(fn, name), topic=topic, fn=fn, when=when)
        self._register(handler)
        return handler

    def _register(self, handler: AnyHandler) -> None:
        known = self._by_name.get(handler.name)
        if known is not None:
            if known.topic != handler.topic:
                raise ValueError(f"handler {handler.name} already handles {known.topic}")
            # The same module imported again (e.g. reloaded): keep one entry, the newest.
            self._by_topic[known.topic].remove(known)
        self._by_name[handler.name] = handler
        self._by_topic.setdefault(handler.topic, []).append(handler)

    def for_topic(self, topic: str) -> list[AnyHandler]:
        """The handlers of `topic` (empty when none)."""
        return list(self._by_topic.get(topic, ()))

    def topics(self) -> list[str]:
        """Every topic that has a handler."""
        return sorted(self._by_topic)


def _name(fn: HandlerFn | LightFn, name: str | None) -> str:
    """The handler's name: `name`, else module.qualname (at most NAME_MAX characters)."""
    handler_name = name or f"{fn.__module__}.{fn.__qualname__}"
    if len(handler_name) > NAME_MAX:
        raise ValueError(f"handler name longer than {NAME_MAX}: pass name=... ({handler_name})")
    return handler_name


handlers = HandlerRegistry()
handles = handlers.handles
handles_light = handlers.handles_light
