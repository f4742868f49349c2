"""The task queue broker chosen by settings.task_broker_url."""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from taskiq import AsyncBroker, InMemoryBroker
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue
from taskiq_redis import RedisStreamBroker

log = logging.getLogger("forecourt.worker")

QUEUE = "forecourt"


def make_broker(url: str | None, *, queue: str = QUEUE) -> AsyncBroker:
    """None -> in-process broker; redis://, rediss://, unix:// -> Redis stream consumer group;
    amqp://, amqps:// -> RabbitMQ durable queue.

    Both outside brokers keep a delivered message until a worker acknowledges it after running
    the task, and hand it to another worker if the first one dies (Redis: after 10 minutes idle;
    RabbitMQ: when its connection drops).
    """
    if not url:
        return InMemoryBroker(max_stored_results=1000)
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        broker: AsyncBroker = RedisStreamBroker(
            url,
            queue_name=queue,
            consumer_group_name=queue,
            consumer_id="0",  # a group made late still reads what was queued before it
            unacknowledged_lock_timeout=30,
        )
        return broker
    if scheme in ("amqp", "amqps"):
        return AioPikaBroker(
            url,
            exchange=Exchange(name=queue),
            task_queues=[Queue(name=queue)],
            dead_letter_queue=Queue(name=f"{queue}.dead_letter"),
            qos=50,
        )
    raise ValueError(
        f"unsupported task broker {scheme}:// (use redis://, amqp:// or leave it empty)"
    )


def is_in_process(broker: AsyncBroker) -> bool:
    """True when tasks run inside this process (the embedded default)."""
    return isinstance(broker, InMemoryBroker)


async def trim_acknowledged(broker: AsyncBroker) -> int:
    """Drop stream entries every worker has acknowledged; returns how many (0 off Redis).

    Trims to the oldest entry still pending or not yet delivered, so no task is ever lost.
    """
    if not isinstance(broker, RedisStreamBroker):
        return 0
    stream: str = broker.queue_name
    group: str = broker.consumer_group_name
    async with Redis(connection_pool=broker.connection_pool) as redis:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
        info = next((g for g in groups if _text(g["name"]) == group), None)
        if info is None:
            return 0
        pending: dict[str, Any] = await redis.xpending(stream, group)
        keep_from = (
            _text(pending["min"]) if pending["pending"] else _text(info["last-delivered-id"])
        )
        if keep_from in ("0-0", ""):
            return 0
        if not pending["pending"]:
            # last-delivered-id itself was delivered and acknowledged too.
            ms, seq = keep_from.split("-")
            keep_from = f"{ms}-{int(seq) + 1}"
        removed: int = await redis.xtrim(stream, minid=keep_from, approximate=False)
    if removed:
        log.info("trimmed task stream", extra={"stream": stream, "removed": removed})
    return removed


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
