"""Publishing events: a row in the caller's unit of work, handed on only after it commits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from forecourt.kit import clock
from forecourt.outbox import repository
from forecourt.outbox.models import OutboxEvent

TOPIC_MAX = 80
_PUBLISHED = "forecourt.outbox.published"
_wakers: WeakKeyDictionary[Engine, list[Callable[[], None]]] = WeakKeyDictionary()


def publish(
    session: AsyncSession,
    topic: str,
    payload: dict[str, Any],
    *,
    available_at: datetime | None = None,
) -> OutboxEvent:
    """Add an event to the caller's unit of work (never commits); it leaves after the commit."""
    if not topic or len(topic) > TOPIC_MAX:
        raise ValueError(f"topic must be 1-{TOPIC_MAX} characters: {topic!r}")
    if not isinstance(payload, dict):
        raise TypeError("payload must be a JSON object (dict)")
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload of {topic} is not plain JSON: {exc}") from exc
    if available_at is not None and available_at.tzinfo is None:
        raise ValueError("available_at must be timezone-aware")
    now = clock.now()
    row = OutboxEvent(
        topic=topic,
        payload=payload,
        created_at=now,
        available_at=available_at or now,
        attempts=0,
    )
    session.add(row)
    session.info[_PUBLISHED] = True
    return row


async def cancel(session: AsyncSession, event_id: int) -> bool:
    """Withdraw a scheduled event in the caller's unit of work, unless it was handed on already.

    A claimed event may still run once; its handler must find nothing to do (as for any repeat).
    """
    return await repository.cancel(session, event_id)


def on_commit(engine: Engine, wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` after every commit on `engine` that published events; returns an undo."""
    _wakers.setdefault(engine, []).append(wake)

    def undo() -> None:
        callbacks = _wakers.get(engine, [])
        if wake in callbacks:
            callbacks.remove(wake)

    return undo


@event.listens_for(Session, "after_commit")
def _wake_dispatchers(session: Session) -> None:
    if not session.info.pop(_PUBLISHED, False):
        return
    bind = session.bind
    engine = bind.engine if isinstance(bind, Connection) else bind
    if isinstance(engine, Engine):
        for wake in list(_wakers.get(engine, ())):
            wake()


@event.listens_for(Session, "after_rollback")
def _forget_published(session: Session) -> None:
    session.info.pop(_PUBLISHED, None)
