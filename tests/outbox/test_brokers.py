"""End to end on real brokers: dispatcher -> Redis stream / RabbitMQ queue -> worker in-process."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import InMemoryBroker
from taskiq_aio_pika import AioPikaBroker
from taskiq_redis import RedisStreamBroker

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.outbox import Event, publish
from forecourt.outbox.registry import HandlerRegistry
from forecourt.runtime import Runtime
from forecourt.worker.brokers import make_broker
from forecourt.worker.jobs import JobRegistry
from forecourt.worker.main import run_scheduler, run_worker
from forecourt.worker.task_runtime import TaskRuntime
from tests.outbox.conftest import count_events, load_event, wait_until

REDIS_URL = os.environ.get("FORECOURT_TEST_REDIS_URL")
AMQP_URL = os.environ.get("FORECOURT_TEST_AMQP_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
async def redis_url() -> str:
    """The test Redis; in CI a missing or unreachable one fails the test instead of skipping."""
    if not REDIS_URL:
        if IN_CI:
            pytest.fail("CI requires FORECOURT_TEST_REDIS_URL (Redis suite)")
        pytest.skip("FORECOURT_TEST_REDIS_URL not set (required in CI)")
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"Redis at FORECOURT_TEST_REDIS_URL unreachable: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
def queue() -> str:
    """A queue name of this test's own."""
    return f"forecourt-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def redis_queue(redis_url: str, queue: str) -> AsyncIterator[str]:
    """The test's stream, deleted afterwards."""
    yield queue
    client = Redis.from_url(redis_url)
    await client.delete(queue, f"autoclaim:{queue}:{queue}")
    await client.aclose()


@pytest.fixture
async def amqp_url(queue: str) -> AsyncIterator[str]:
    """The test RabbitMQ (optional: FORECOURT_TEST_AMQP_URL); the test's queues go afterwards."""
    if not AMQP_URL:
        pytest.skip("FORECOURT_TEST_AMQP_URL not set (RabbitMQ support is optional)")
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"RabbitMQ at FORECOURT_TEST_AMQP_URL unreachable: {exc}")
        pytest.skip(f"RabbitMQ unreachable: {exc}")
    yield AMQP_URL
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.queue_delete(f"{queue}.dead_letter")
        await channel.exchange_delete(queue)


def runs(handler: str, outcome: str) -> float:
    """How often `handler` ended with `outcome` in this process."""
    labels = {"handler": handler, "outcome": outcome}
    return REGISTRY.get_sample_value("forecourt_outbox_handler_runs_total", labels) or 0.0


async def deliver_through(
    runtime: Runtime,
    db: Database,
    url: str,
    queue: str,
    *,
    then: Callable[[TaskRuntime], Awaitable[None]] | None = None,
) -> None:
    """Publish, dispatch into the broker, run a worker, deliver twice: the handler runs once."""
    handlers = HandlerRegistry()
    name = f"test.{queue}"
    calls: list[int] = []

    @handlers.handles("order.paid", name=name)
    async def handle(session: AsyncSession, event: Event) -> None:
        calls.append(event.id)
        publish(session, "test.followup", {"source": event.id})

    # The API process publishes and dispatches into the broker; it runs no tasks itself.
    api = TaskRuntime(
        runtime, broker=make_broker(url, queue=queue), handlers=handlers, jobs=JobRegistry()
    )
    # A worker process: its own broker connection on the same queue.
    worker = TaskRuntime(
        runtime, broker=make_broker(url, queue=queue), handlers=handlers, jobs=JobRegistry()
    )
    assert not api.in_process
    await api.start(dispatcher=False, scheduler=False)
    await worker.start(dispatcher=False, scheduler=False, worker=True)
    stop = asyncio.Event()
    listening = asyncio.create_task(worker.run_worker(stop, concurrency=4))
    try:
        async with db.unit_of_work() as session:
            row = publish(session, "order.paid", {"order_id": 9})
            await session.flush()
            event_id = row.id
        assert await api.dispatcher.run_once() == 1
        await wait_until(lambda: calls == [event_id], within=10)

        # A duplicate delivery through the broker changes nothing.
        await api.process_event.kiq(event_id)
        await wait_until(lambda: runs(name, "skipped") == 1, within=10)
        assert calls == [event_id]
        assert runs(name, "done") == 1
        assert await count_events(db, "test.followup") == 1
        await api.dispatcher.flush()
        assert (await load_event(db, event_id)).dispatched_at is not None
        if then is not None:
            await then(api)
    finally:
        stop.set()
        await asyncio.wait_for(listening, timeout=10)
        await worker.stop()
        await api.stop()


@pytest.mark.redis
async def test_event_goes_through_redis_to_a_worker_once(
    runtime: Runtime, db: Database, redis_url: str, redis_queue: str
) -> None:
    async def trim(api: TaskRuntime) -> None:
        # Once both deliveries are acknowledged the trim job drops both stream entries.
        trimmed = 0

        async def both_trimmed() -> bool:
            nonlocal trimmed
            trimmed += await api.trim_queue()
            return trimmed == 2

        await wait_until(both_trimmed, within=10)
        assert await api.trim_queue() == 0

    await deliver_through(runtime, db, redis_url, redis_queue, then=trim)


async def test_event_goes_through_rabbitmq_to_a_worker_once(
    runtime: Runtime, db: Database, amqp_url: str, queue: str
) -> None:
    await deliver_through(runtime, db, amqp_url, queue)


def test_the_broker_url_chooses_the_broker() -> None:
    assert isinstance(make_broker(None), InMemoryBroker)
    assert isinstance(make_broker(""), InMemoryBroker)
    redis = make_broker("redis://127.0.0.1:6379/0")
    assert isinstance(redis, RedisStreamBroker)
    assert (redis.queue_name, redis.consumer_group_name, redis.consumer_id) == (
        "forecourt",
        "forecourt",
        "0",
    )
    assert isinstance(make_broker("amqp://guest:guest@127.0.0.1:5672/"), AioPikaBroker)
    with pytest.raises(ValueError, match="unsupported task broker nats://"):
        make_broker("nats://127.0.0.1:4222")


async def test_worker_and_scheduler_commands_need_a_broker(settings: Settings) -> None:
    with pytest.raises(SystemExit, match="FORECOURT_TASK_BROKER_URL"):
        await run_worker(settings)
    with pytest.raises(SystemExit, match="FORECOURT_TASK_BROKER_URL"):
        await run_scheduler(settings)
