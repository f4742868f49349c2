"""Publishing, dispatching and handling events: after commit only, each handler once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.outbox import Event, processor, publish, repository
from forecourt.outbox.dispatcher import Dispatcher, Kick
from forecourt.outbox.models import OutboxEvent, ProcessedEvent
from forecourt.outbox.processor import Outcome, process_event
from forecourt.outbox.registry import HandlerRegistry
from forecourt.outbox.repository import Claimed
from forecourt.outbox.retry import RetryPolicy
from forecourt.worker.task_runtime import TaskRuntime
from tests.outbox.conftest import T0, FrozenClock, count_events, load_event, wait_until


class Boom(RuntimeError):
    """A handler failure."""


def follow_up(session: AsyncSession, event: Event, by: str) -> None:
    """A handler's effect in the database: a follow-up event in the handler's transaction."""
    publish(session, "test.followup", {"source": event.id, "by": by})


async def publish_one(db: Database, topic: str = "order.paid", **payload: object) -> int:
    """Publish one event in its own unit of work; returns its id."""
    async with db.unit_of_work() as session:
        row = publish(session, topic, {"order_id": 7, **payload})
        await session.flush()
        return row.id


async def markers(db: Database) -> list[tuple[str, int]]:
    """Every processed_events key, sorted."""
    async with db.sessions() as session:
        rows = await session.execute(select(ProcessedEvent.handler, ProcessedEvent.event_id))
        return sorted((r.handler, r.event_id) for r in rows)


async def test_publish_writes_in_the_callers_unit_of_work(
    db: Database, frozen: FrozenClock
) -> None:
    async with db.sessions() as session:
        publish(session, "order.paid", {"order_id": 1})
        await session.flush()
        await session.rollback()
    assert await count_events(db, "order.paid") == 0

    event_id = await publish_one(db)
    row = await load_event(db, event_id)
    assert (row.topic, row.payload, row.attempts) == ("order.paid", {"order_id": 7}, 0)
    assert (row.created_at, row.available_at, row.dispatched_at) == (T0, T0, None)
    assert row.last_error is None


async def test_publish_refuses_what_cannot_be_stored(db: Database) -> None:
    async with db.sessions() as session:
        with pytest.raises(ValueError, match="not plain JSON"):
            publish(session, "order.paid", {"at": datetime.now(UTC)})
        with pytest.raises(ValueError, match="topic"):
            publish(session, "", {})
        with pytest.raises(ValueError, match="timezone-aware"):
            publish(session, "order.paid", {}, available_at=datetime(2026, 1, 1))
        assert not session.new


async def test_rolled_back_event_is_never_dispatched(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry
) -> None:
    calls: list[int] = []

    @handlers.handles("order.paid", name="test.record")
    async def record(session: AsyncSession, event: Event) -> None:
        calls.append(event.id)

    async def fail_after_publishing() -> None:
        async with db.unit_of_work() as session:
            publish(session, "order.paid", {"order_id": 1})
            await session.flush()
            raise Boom("the order failed after publishing")

    with pytest.raises(Boom):
        await fail_after_publishing()

    assert await count_events(db, "order.paid") == 0
    assert await tasks.dispatcher.run_once() == 0
    await tasks.drain()
    assert calls == []


async def test_committed_event_is_handled_once_even_when_delivered_again(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry, frozen: FrozenClock
) -> None:
    calls: list[int] = []

    @handlers.handles("order.paid", name="test.receipt")
    async def receipt(session: AsyncSession, event: Event) -> None:
        calls.append(event.id)
        follow_up(session, event, "receipt")

    event_id = await publish_one(db)
    assert await tasks.dispatcher.run_once() == 1
    await tasks.drain()
    assert calls == [event_id]
    await tasks.dispatcher.flush()  # marks what the pass handed on (else the next pass does)

    row = await load_event(db, event_id)
    assert (row.dispatched_at, row.attempts, row.last_error) == (T0, 0, None)
    assert await markers(db) == [("test.receipt", event_id)]
    assert await count_events(db, "test.followup") == 1

    # A redelivery (the queue retried, or the dispatcher's lease ran out) changes nothing.
    first = await tasks.process_event.kiq(event_id)
    second = await tasks.process_event.kiq(event_id)
    await tasks.drain()
    assert (await first.wait_result(timeout=5)).return_value == {"test.receipt": "skipped"}
    assert (await second.wait_result(timeout=5)).return_value == {"test.receipt": "skipped"}
    assert calls == [event_id]
    assert await count_events(db, "test.followup") == 1


async def test_concurrent_deliveries_run_the_handler_once(
    db: Database, handlers: HandlerRegistry
) -> None:
    calls: list[int] = []

    @handlers.handles("order.paid", name="test.slow")
    async def slow(session: AsyncSession, event: Event) -> None:
        calls.append(event.id)
        await asyncio.sleep(0.05)  # hold the marker while the other deliveries arrive
        follow_up(session, event, "slow")

    event_id = await publish_one(db)
    results = await asyncio.gather(
        *(process_event(db, handlers, RetryPolicy(), event_id) for _ in range(3))
    )
    assert sorted(r["test.slow"] for r in results) == ["done", "skipped", "skipped"]
    assert calls == [event_id]
    assert await count_events(db, "test.followup") == 1
    assert await markers(db) == [("test.slow", event_id)]


async def test_failing_handler_is_retried_and_the_other_runs_once(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry, frozen: FrozenClock
) -> None:
    calls: dict[str, int] = {"flaky": 0, "steady": 0}

    @handlers.handles("order.paid", name="test.flaky")
    async def flaky(session: AsyncSession, event: Event) -> None:
        calls["flaky"] += 1
        follow_up(session, event, "flaky")  # rolled back with the failure
        if calls["flaky"] == 1:
            raise Boom("printer offline")

    @handlers.handles("order.paid", name="test.steady")
    async def steady(session: AsyncSession, event: Event) -> None:
        calls["steady"] += 1
        follow_up(session, event, "steady")

    event_id = await publish_one(db)
    assert await tasks.dispatcher.run_once() == 1
    await tasks.drain()
    assert calls == {"flaky": 1, "steady": 1}
    row = await load_event(db, event_id)
    assert (row.dispatched_at, row.attempts) == (None, 1)
    assert row.available_at == T0 + timedelta(seconds=1)
    assert row.last_error == "test.flaky: Boom: printer offline"
    assert await markers(db) == [("test.steady", event_id)]

    assert await tasks.dispatcher.run_once() == 1  # only the steady handler's follow-up is due
    frozen.advance(timedelta(seconds=1))
    assert await tasks.dispatcher.run_once() == 1
    await tasks.drain()
    assert calls == {"flaky": 2, "steady": 1}
    await tasks.dispatcher.flush()
    row = await load_event(db, event_id)
    assert (row.dispatched_at, row.attempts) == (T0 + timedelta(seconds=1), 1)
    assert await markers(db) == [("test.flaky", event_id), ("test.steady", event_id)]
    assert await count_events(db, "test.followup") == 2


async def test_refused_dispatch_backs_off_exponentially(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock
) -> None:
    refusals = 2

    async def kick(event: Claimed) -> None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise ConnectionError("broker down")

    dispatcher = tasks.dispatcher
    dispatcher.kick = kick
    event_id = await publish_one(db)

    assert await dispatcher.run_once() == 1
    row = await load_event(db, event_id)
    assert (row.attempts, row.dispatched_at) == (1, None)
    assert row.available_at == T0 + timedelta(seconds=1)
    assert row.last_error == "dispatch: ConnectionError: broker down"

    frozen.advance(timedelta(milliseconds=999))
    assert await dispatcher.run_once() == 0
    second = frozen.advance(timedelta(milliseconds=1))
    assert await dispatcher.run_once() == 1
    row = await load_event(db, event_id)
    assert (row.attempts, row.available_at) == (2, second + timedelta(seconds=2))

    third = frozen.advance(timedelta(seconds=2))
    assert await dispatcher.run_once() == 1
    await dispatcher.flush()
    row = await load_event(db, event_id)
    assert (row.attempts, row.dispatched_at) == (2, third)


def test_retry_policy_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(n).total_seconds() for n in (1, 2, 3, 4, 12, 13, 100)]
    assert delays == [1, 2, 4, 8, 2048, 3600, 3600]
    assert policy.delay(0) == timedelta(0)


async def test_event_waits_for_its_available_at(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock
) -> None:
    async with db.unit_of_work() as session:
        publish(session, "order.expire", {"order_id": 3}, available_at=T0 + timedelta(minutes=15))
    assert await tasks.dispatcher.run_once() == 0
    frozen.advance(timedelta(minutes=15))
    assert await tasks.dispatcher.run_once() == 1


async def test_claim_is_a_lease_that_returns_when_its_holder_dies(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock
) -> None:
    event_id = await publish_one(db)
    async with db.unit_of_work() as session:
        claimed = await repository.claim(
            session, now=T0, lease_until=T0 + timedelta(seconds=60), limit=10
        )
    assert [c.id for c in claimed] == [event_id]
    # The holder never reports back: nobody else takes the event until the lease ends.
    frozen.advance(timedelta(seconds=59))
    assert await tasks.dispatcher.run_once() == 0
    frozen.advance(timedelta(seconds=1))
    assert await tasks.dispatcher.run_once() == 1


async def test_two_dispatchers_hand_on_each_event_exactly_once(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry
) -> None:
    handled: list[int] = []

    @handlers.handles("order.paid", name="test.count")
    async def count(session: AsyncSession, event: Event) -> None:
        handled.append(event.id)

    async with db.unit_of_work() as session:
        rows = [publish(session, "order.paid", {"n": n}) for n in range(120)]
        await session.flush()
        ids = [row.id for row in rows]

    kicked: dict[str, list[int]] = {"a": [], "b": []}

    def kicker(name: str) -> Kick:
        async def kick(event: Claimed) -> None:
            kicked[name].append(event.id)
            await tasks.process_event.kiq(event.id)

        return kick

    one = Dispatcher(db, kicker("a"), batch_size=7)
    two = Dispatcher(db, kicker("b"), batch_size=7)

    async def drain(dispatcher: Dispatcher) -> None:
        while await dispatcher.run_once():
            pass

    await asyncio.gather(drain(one), drain(two))
    await tasks.drain()
    assert sorted(kicked["a"] + kicked["b"]) == ids
    assert kicked["a"]  # both took a share: neither waited on the other's locks
    assert kicked["b"]
    assert sorted(handled) == ids
    async with db.sessions() as session:
        undispatched = await session.execute(
            select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))
        )
        assert undispatched.all() == []


async def test_dispatcher_loop_wakes_up_on_commit(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry
) -> None:
    handled: list[int] = []

    @handlers.handles("order.paid", name="test.fast")
    async def fast(session: AsyncSession, event: Event) -> None:
        handled.append(event.id)

    tasks.dispatcher.poll_seconds = 60.0  # only a wake-up can make it look again in time
    await tasks.start(dispatcher=True, scheduler=False)
    await asyncio.sleep(0.05)  # let its first (empty) pass finish and start waiting
    event_id = await publish_one(db)
    await wait_until(lambda: handled == [event_id], within=3)


async def test_runtime_start_honours_the_settings(
    db: Database, tasks: TaskRuntime, handlers: HandlerRegistry
) -> None:
    handled: list[int] = []

    @handlers.handles("order.paid", name="test.started")
    async def started(session: AsyncSession, event: Event) -> None:
        handled.append(event.id)

    runtime = tasks.runtime
    runtime.settings = runtime.settings.model_copy(update={"run_dispatcher": True})
    await runtime.start()
    event_id = await publish_one(db)
    await wait_until(lambda: handled == [event_id], within=3)
    await tasks.stop()
    await asyncio.sleep(0.05)
    await publish_one(db)
    await asyncio.sleep(0.1)
    assert handled == [event_id]


def test_handler_names_are_checked() -> None:
    registry = HandlerRegistry()

    async def handler(session: AsyncSession, event: Event) -> None:
        return None

    registry.add("a.b", handler, name="test.one")
    with pytest.raises(ValueError, match=r"already handles a\.b"):
        registry.add("c.d", handler, name="test.one")
    with pytest.raises(ValueError, match="longer than 80"):
        registry.add("a.b", handler, name="x" * 81)
    assert [h.name for h in registry.for_topic("a.b")] == ["test.one"]
    assert registry.for_topic("nobody.listens") == []


async def test_event_goes_round_again_when_the_database_does_not_answer(
    db: Database,
    tasks: TaskRuntime,
    handlers: HandlerRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handled: list[int] = []

    @handlers.handles("order.paid", name="test.patient")
    async def patient(session: AsyncSession, event: Event) -> None:
        handled.append(event.id)

    real = processor.process_event
    outages = 2

    async def flaky_database(*args: Any) -> dict[str, Outcome]:
        nonlocal outages
        if outages:
            outages -= 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database down"))
        return await real(*args)

    monkeypatch.setattr(processor, "process_event", flaky_database)
    tasks.policy = RetryPolicy(base=timedelta(milliseconds=10))
    event_id = await publish_one(db)
    assert await tasks.dispatcher.run_once() == 1
    await wait_until(lambda: handled == [event_id], within=3)
    assert outages == 0


def sample(name: str, **labels: str) -> float:
    """The current value of a Prometheus sample (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_dispatches_failures_and_backlog(
    db: Database, tasks: TaskRuntime, frozen: FrozenClock
) -> None:
    refused = await publish_one(db, n=1)
    await publish_one(db, n=2)
    dispatched = sample("forecourt_outbox_dispatched_total")
    failed = sample("forecourt_outbox_dispatch_failed_total")

    async def kick(event: Claimed) -> None:
        if event.id == refused:
            raise ConnectionError("broker down")

    tasks.dispatcher.kick = kick
    assert await tasks.dispatcher.run_once() == 2
    assert sample("forecourt_outbox_dispatched_total") == dispatched + 1
    assert sample("forecourt_outbox_dispatch_failed_total") == failed + 1

    frozen.advance(timedelta(seconds=30))
    backlog = await tasks.dispatcher.update_metrics()
    assert (backlog.pending, backlog.failing, backlog.oldest_created_at) == (1, 1, T0)
    assert sample("forecourt_outbox_backlog") == 1
    assert sample("forecourt_outbox_failing") == 1
    assert sample("forecourt_outbox_oldest_pending_seconds") == 30
