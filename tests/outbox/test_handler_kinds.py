"""Light handlers (no database work at all) and handlers that decline events (`when`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.outbox import Event, publish
from forecourt.outbox.models import ProcessedEvent
from forecourt.outbox.processor import process_event
from forecourt.outbox.registry import Handler, HandlerRegistry, LightHandler
from forecourt.outbox.retry import RetryPolicy
from tests.outbox.conftest import FrozenClock, load_event


async def published(db: Database, topic: str, **payload: Any) -> Event:
    """Publish one event in its own unit of work; the event as the dispatcher hands it on."""
    async with db.unit_of_work() as session:
        row = publish(session, topic, payload)
        await session.flush()
        return Event(row.id, row.topic, dict(row.payload), row.created_at, row.attempts)


async def markers(db: Database) -> list[tuple[str, int]]:
    """Every processed_events key, sorted."""
    async with db.sessions() as session:
        rows = await session.execute(select(ProcessedEvent.handler, ProcessedEvent.event_id))
        return sorted((r.handler, r.event_id) for r in rows)


@pytest.fixture
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement sent while the test runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def test_a_light_handler_runs_with_no_database_work_every_time_it_is_delivered(
    db: Database, handlers: HandlerRegistry, statements: list[str]
) -> None:
    calls: list[int] = []

    @handlers.handles_light("speaker.created", name="test.wake")
    async def wake(event: Event) -> None:
        calls.append(event.id)

    assert isinstance(handlers.for_topic("speaker.created")[0], LightHandler)
    event_ = await published(db, "speaker.created", message_id="ann_1")
    statements.clear()
    for _ in range(2):  # no marker: a redelivery runs it again (it must be idempotent)
        outcomes = await process_event(db, handlers, RetryPolicy(), event_.id, event_)
        assert outcomes == {"test.wake": "done"}
    assert calls == [event_.id, event_.id]
    assert statements == []
    assert await markers(db) == []


async def test_an_event_declined_by_when_is_skipped_without_touching_the_database(
    db: Database, handlers: HandlerRegistry, statements: list[str]
) -> None:
    calls: list[str] = []

    def unfinished(event: Event) -> bool:
        return bool(event.payload.get("status") != "done")

    @handlers.handles("pump.command_finished", name="test.refund", when=unfinished)
    async def refund(session: AsyncSession, event: Event) -> None:
        calls.append(str(event.payload["status"]))

    done = await published(db, "pump.command_finished", status="done")
    failed = await published(db, "pump.command_finished", status="failed")
    statements.clear()
    outcome = await process_event(db, handlers, RetryPolicy(), done.id, done)
    assert outcome == {"test.refund": "skipped"}
    assert statements == []
    assert calls == []

    outcome = await process_event(db, handlers, RetryPolicy(), failed.id, failed)
    assert outcome == {"test.refund": "done"}
    assert calls == ["failed"]
    assert await markers(db) == [("test.refund", failed.id)]


async def test_a_failing_light_handler_reschedules_the_event_like_any_handler(
    db: Database, handlers: HandlerRegistry, frozen: FrozenClock
) -> None:
    runs = {"light": 0, "durable": 0}

    @handlers.handles_light("order.paid", name="test.flaky_light")
    async def flaky(event: Event) -> None:
        runs["light"] += 1
        if runs["light"] == 1:
            raise ConnectionError("speaker link down")

    @handlers.handles("order.paid", name="test.durable")
    async def durable(session: AsyncSession, event: Event) -> None:
        runs["durable"] += 1

    event_ = await published(db, "order.paid", order_id=1)
    first = await process_event(db, handlers, RetryPolicy(), event_.id, event_)
    assert first == {"test.flaky_light": "failed", "test.durable": "done"}
    row = await load_event(db, event_.id)
    assert (row.attempts, row.last_error) == (
        1,
        "test.flaky_light: ConnectionError: speaker link down",
    )

    again = await process_event(db, handlers, RetryPolicy(), event_.id)
    assert again == {"test.flaky_light": "done", "test.durable": "skipped"}
    assert runs == {"light": 2, "durable": 1}


async def test_a_failing_when_counts_as_a_failed_run(
    db: Database, handlers: HandlerRegistry, frozen: FrozenClock
) -> None:
    def broken(event: Event) -> bool:
        raise KeyError("status")

    @handlers.handles("order.paid", name="test.picky", when=broken)
    async def picky(session: AsyncSession, event: Event) -> None:
        raise AssertionError("not reached")

    event_ = await published(db, "order.paid", order_id=1)
    outcome = await process_event(db, handlers, RetryPolicy(), event_.id, event_)
    assert outcome == {"test.picky": "failed"}
    assert (await load_event(db, event_.id)).attempts == 1


def test_light_and_durable_handlers_share_one_namespace() -> None:
    registry = HandlerRegistry()

    async def light(event: Event) -> None:
        return None

    async def durable(session: AsyncSession, event: Event) -> None:
        return None

    registry.add_light("a.b", light, name="test.one")
    with pytest.raises(ValueError, match=r"already handles a\.b"):
        registry.add("c.d", durable, name="test.one")
    with pytest.raises(ValueError, match="longer than 80"):
        registry.add_light("a.b", light, name="x" * 81)
    registry.add("a.b", durable, name="test.one")  # re-registered (a reload): the newest wins
    [handler] = registry.for_topic("a.b")
    assert isinstance(handler, Handler)
    assert handler.fn is durable
