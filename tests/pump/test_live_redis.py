"""RedisHub on a real Redis: fan-out across API processes, reconnect, WebSocket over Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from websockets.asyncio.client import connect

from forecourt.pump.live import RESYNC, RedisHub, Subscription
from forecourt.runtime import Runtime
from tests.conftest import IN_CI
from tests.fixtures.tanks import Site
from tests.fixtures.tanks import site as site
from tests.pump.test_live import server  # noqa: F401  (fixture)

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("FORECOURT_TEST_REDIS_URL")


async def _redis_url() -> str:
    """The test Redis; in CI a missing or dead Redis fails instead of skipping."""
    if not REDIS_URL:
        if IN_CI:
            pytest.fail("CI requires FORECOURT_TEST_REDIS_URL (live fan-out tests)")
        pytest.skip("FORECOURT_TEST_REDIS_URL not set (required in CI)")
    probe = Redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except (RedisError, OSError) as exc:
        if IN_CI:
            pytest.fail(f"Redis at FORECOURT_TEST_REDIS_URL is unreachable: {exc}")
        pytest.skip(f"Redis at FORECOURT_TEST_REDIS_URL is unreachable: {exc}")
    finally:
        await probe.aclose()
    return REDIS_URL


@pytest.fixture
async def hubs() -> AsyncIterator[tuple[RedisHub, RedisHub]]:
    """Two hubs as two API processes would have them (same channels, own connections)."""
    url = await _redis_url()
    prefix = f"forecourt:test:{uuid.uuid4().hex}:"
    names = [f"fc-live-test-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    one = RedisHub(url, prefix=prefix, client_name=names[0], ping_seconds=0.5)
    two = RedisHub(url, prefix=prefix, client_name=names[1], ping_seconds=0.5)
    yield one, two
    await one.close()
    await two.close()


async def _next(sub: Subscription) -> dict[str, Any] | None:
    return await sub.get(5)


async def test_both_processes_receive_every_publish(hubs: tuple[RedisHub, RedisHub]) -> None:
    one, two = hubs
    async with one.subscribe(7) as a, two.subscribe(7) as b, two.subscribe(8) as other:
        await one.publish(7, {"type": "fp", "fp": 1, "n": 1})
        await two.publish(7, {"type": "fp", "fp": 1, "n": 2})
        for sub in (a, b):
            assert await _next(sub) == {"type": "fp", "fp": 1, "n": 1}
            assert await _next(sub) == {"type": "fp", "fp": 1, "n": 2}
        assert await other.get(0.1) is None
    # Both unsubscribed: nobody listens any more.
    assert one.subscriber_count(7) == two.subscriber_count(7) == 0


async def test_reconnects_and_asks_for_a_resync(hubs: tuple[RedisHub, RedisHub]) -> None:
    one, two = hubs
    admin = Redis.from_url(await _redis_url())
    try:
        async with one.subscribe(7) as a:
            clients = await admin.client_list()
            mine = [c["id"] for c in clients if c.get("name") == one.client_name]
            assert len(mine) == 1
            await admin.client_kill_filter(_id=mine[0])
            assert await _next(a) == RESYNC
            await two.publish(7, {"type": "gateway", "online": False})
            assert await _next(a) == {"type": "gateway", "online": False}
    finally:
        await admin.aclose()


async def test_websocket_over_redis(
    server: str,  # noqa: F811
    runtime: Runtime,
    site: Site,
    hubs: tuple[RedisHub, RedisHub],
) -> None:
    api_hub, other_node = hubs
    runtime.live = api_hub
    async with connect(f"{server}/api/v1/stations/{site.a}/nozzles/live") as ws:
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["type"] == "snapshot"
        # Published by another API node (its link server handled the gateway message).
        await other_node.publish(site.a, {"type": "gateway", "online": True, "ts": "t"})
        got = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        got.pop("sent_at")
        assert got == {"type": "gateway", "online": True, "ts": "t"}
