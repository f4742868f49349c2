"""Running an event's handlers: each durable one in its own unit of work, at most once."""

from __future__ import annotations

import logging
import time
from typing import Literal

from forecourt.db import Database
from forecourt.kit import clock
from forecourt.outbox import metrics, repository
from forecourt.outbox.registry import AnyHandler, Event, HandlerRegistry, LightHandler
from forecourt.outbox.retry import RetryPolicy

log = logging.getLogger("forecourt.outbox")

Outcome = Literal["done", "skipped", "failed"]


async def process_event(
    db: Database,
    registry: HandlerRegistry,
    policy: RetryPolicy,
    event_id: int,
    known: Event | None = None,
) -> dict[str, Outcome]:
    """Run every handler of the event's topic; reschedule the event when any of them failed.

    A handler that already applied the event (its processed_events marker exists) is skipped,
    so a duplicate or concurrent delivery changes nothing. One whose `when` declines the event
    is skipped without touching the database; a light one runs without any database work.
    One handler failing never stops the others; the event comes back after the policy's delay
    and the failed ones (and any light ones) run again.
    `known` is the event as the dispatcher claimed it (saves reading it again).
    """
    event = known if known is not None else await _load(db, event_id)
    if event is None:
        return {}
    handlers = registry.for_topic(event.topic)
    if not handlers:
        return {}
    outcomes: dict[str, Outcome] = {}
    errors: list[str] = []
    for handler in handlers:
        outcome, error = await _run(db, handler, event)
        outcomes[handler.name] = outcome
        if error:
            errors.append(f"{handler.name}: {error}")
    if errors:
        await _retry_later(db, policy, event, errors)
    return outcomes


async def _load(db: Database, event_id: int) -> Event | None:
    async with db.sessions() as session:
        row = await repository.get(session, event_id)
        if row is None:
            log.warning("outbox event not found (purged?)", extra={"event_id": event_id})
            return None
        return Event(
            id=row.id,
            topic=row.topic,
            payload=dict(row.payload),
            created_at=row.created_at,
            attempts=row.attempts,
        )


async def _retry_later(db: Database, policy: RetryPolicy, event: Event, errors: list[str]) -> None:
    async with db.unit_of_work() as session:
        retry_at = await repository.reschedule(
            session,
            event.id,
            attempts=event.attempts,
            error="\n".join(errors),
            now=clock.now(),
            policy=policy,
        )
    metrics.RETRIED.inc()
    level = logging.ERROR if event.attempts + 1 >= policy.warn_after else logging.WARNING
    log.log(
        level,
        "outbox event handlers failed; retrying",
        extra={
            "event_id": event.id,
            "topic": event.topic,
            "attempts": event.attempts + 1,
            "retry_at": retry_at.isoformat() if retry_at else None,
        },
    )


async def _run(db: Database, handler: AnyHandler, event: Event) -> tuple[Outcome, str | None]:
    started = time.perf_counter()
    outcome: Outcome
    error: str | None = None
    try:
        outcome = await _apply(db, handler, event)
    except Exception as exc:
        outcome, error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception(
            "outbox handler failed",
            extra={"handler": handler.name, "event_id": event.id, "topic": event.topic},
        )
    metrics.HANDLED.labels(handler.name, outcome).inc()
    metrics.HANDLER_SECONDS.labels(handler.name).observe(time.perf_counter() - started)
    return outcome, error


async def _apply(db: Database, handler: AnyHandler, event: Event) -> Outcome:
    """Run one handler: "skipped" when declined by `when` or already applied, else "done"."""
    if handler.when is not None and not handler.when(event):
        return "skipped"
    if isinstance(handler, LightHandler):
        await handler.fn(event)
        return "done"
    async with db.unit_of_work() as session:
        # First statement of the transaction: the marker doubles as the lock.
        fresh = await repository.mark_processed(
            session, handler=handler.name, event_id=event.id, now=clock.now()
        )
        if fresh:
            await handler.fn(session, event)
    return "done" if fresh else "skipped"
