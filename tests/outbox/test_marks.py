"""Marking events dispatched: with the next pass's claim, on stop, never over a retry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.outbox import Event, publish
from forecourt.outbox.dispatcher import Dispatcher
from forecourt.outbox.registry import HandlerRegistry
from forecourt.outbox.repository import Claimed
from forecourt.worker.task_runtime import TaskRuntime
from tests.outbox.conftest import T0, FrozenClock, load_event, wait_until

LEASE = timedelta(seconds=60)


async def publish_one(db: Database, topic: str = "order.paid") -> int:
    """Publish one event in its own unit of work; returns its id."""
    async with db.unit_of_work() as session:
        row = publish(session, topic, {"order_id": 7})
        await session.flush()
        return row.id


@pytest.fixture
def outbox_writes(db: Database) -> Iterator[list[str]]:
    """The dispatcher's writes to outbox_events (claim, mark, reschedule) and the commits."""
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if "UPDATE outbox_events" not in sql:
            return
        if "last_error" in sql:
            seen.append("reschedule")
        elif "SET available_at" in sql:
            seen.append("claim")
        elif "SET dispatched_at" in sql:
            seen.append("mark")

    def commit(_conn: Any) -> None:
        seen.append("commit")

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    yield seen
    event.remove(engine, "before_cursor_execute", statement)
    event.remove(engine, "commit", commit)


async def test_handed_on_events_are_marked_by_the_next_pass_with_its_claim(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock, outbox_writes: list[str]
) -> None:
    event_id = await publish_one(db)
    outbox_writes.clear()
    assert await tasks.dispatcher.run_once() == 1
    assert outbox_writes == ["claim", "commit"]  # no unit of work of its own for the mark
    row = await load_event(db, event_id)
    assert (row.dispatched_at, row.available_at) == (None, T0 + LEASE)

    frozen.advance(timedelta(seconds=1))
    assert await tasks.dispatcher.run_once() == 0
    assert outbox_writes == ["claim", "commit", "mark", "claim", "commit"]
    row = await load_event(db, event_id)
    assert row.dispatched_at == T0  # when it was handed on
    assert await tasks.dispatcher.run_once() == 0
    assert outbox_writes[5:] == ["claim", "commit"]  # nothing left to mark


async def test_a_refused_kick_is_rescheduled_at_once_and_marks_go_with_it(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock, outbox_writes: list[str]
) -> None:
    refused = await publish_one(db)
    taken = await publish_one(db)

    async def kick(event: Claimed) -> None:
        if event.id == refused:
            raise ConnectionError("broker down")

    tasks.dispatcher.kick = kick
    outbox_writes.clear()
    assert await tasks.dispatcher.run_once() == 2
    assert outbox_writes == ["claim", "commit", "mark", "reschedule", "commit"]
    row = await load_event(db, refused)
    assert (row.attempts, row.dispatched_at) == (1, None)
    assert row.available_at == T0 + timedelta(seconds=1)
    assert (await load_event(db, taken)).dispatched_at == T0


async def test_stop_marks_what_was_handed_on(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock
) -> None:
    event_id = await publish_one(db)
    assert await tasks.dispatcher.run_once() == 1
    await tasks.dispatcher.stop()
    assert (await load_event(db, event_id)).dispatched_at == T0


async def test_a_failed_pass_keeps_its_marks_for_the_next_one(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = await publish_one(db)
    dispatcher = tasks.dispatcher
    assert await dispatcher.run_once() == 1

    async def database_down(session: AsyncSession, **_: Any) -> list[Claimed]:
        raise ConnectionError("database down")

    with monkeypatch.context() as patch:
        patch.setattr("forecourt.outbox.repository.claim", database_down)
        with pytest.raises(ConnectionError):
            await dispatcher.run_once()
    assert (await load_event(db, event_id)).dispatched_at is None  # rolled back with the claim
    assert await dispatcher.run_once() == 0
    assert (await load_event(db, event_id)).dispatched_at == T0


async def test_a_mark_never_overwrites_a_retry_scheduled_meanwhile(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry, frozen: FrozenClock
) -> None:
    @handlers.handles("order.paid", name="test.failing")
    async def failing(session: AsyncSession, event: Event) -> None:
        raise RuntimeError("printer offline")

    event_id = await publish_one(db)
    assert await tasks.dispatcher.run_once() == 1
    await tasks.drain()  # the handler failed: retry in 1 s
    assert await tasks.dispatcher.run_once() == 0  # the mark finds the retry, not its lease
    row = await load_event(db, event_id)
    assert (row.dispatched_at, row.attempts) == (None, 1)
    assert row.available_at == T0 + timedelta(seconds=1)


async def test_a_mark_never_overwrites_a_later_claim_of_another_dispatcher(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock
) -> None:
    async def kick(event: Claimed) -> None:
        return None

    slow, other = Dispatcher(db, kick, lease=LEASE), Dispatcher(db, kick, lease=LEASE)
    event_id = await publish_one(db)
    assert await slow.run_once() == 1
    later = frozen.advance(LEASE)  # the lease ran out before the slow one marked it
    assert await other.run_once() == 1
    await slow.flush()
    row = await load_event(db, event_id)
    assert (row.dispatched_at, row.available_at) == (None, later + LEASE)
    await other.flush()
    assert (await load_event(db, event_id)).dispatched_at == later


async def test_the_loop_marks_at_its_next_poll_when_nothing_is_due(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry
) -> None:
    handled: list[int] = []

    @handlers.handles("order.paid", name="test.quick")
    async def quick(session: AsyncSession, event: Event) -> None:
        handled.append(event.id)

    tasks.dispatcher.poll_seconds = 0.05
    await tasks.start(dispatcher=True, scheduler=False)
    event_id = await publish_one(db)
    await wait_until(lambda: handled == [event_id], within=3)

    async def marked() -> bool:
        return (await load_event(db, event_id)).dispatched_at is not None

    await wait_until(marked, within=3)
