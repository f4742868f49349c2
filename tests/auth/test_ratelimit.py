"""Sliding-window rate limits, in memory and on real Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from forecourt.app import create_app
from forecourt.db import Database
from forecourt.errors import RateLimited
from forecourt.kit import clock
from forecourt.kit.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from forecourt.runtime import build
from tests.conftest import IN_CI
from tests.conftest import test_settings as make_settings

REDIS_URL = os.environ.get("FORECOURT_TEST_REDIS_URL")


async def _redis_or_skip() -> str:
    """The test Redis URL; in CI a missing or dead Redis fails the test instead of skipping."""
    if not REDIS_URL:
        if IN_CI:
            pytest.fail("CI requires FORECOURT_TEST_REDIS_URL (Redis rate-limiter tests)")
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


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    """Each implementation; the Redis one under a unique key prefix, cleaned afterwards."""
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    url = await _redis_or_skip()
    prefix = f"forecourt:test:{uuid.uuid4().hex}:"
    redis = Redis.from_url(url)
    try:
        yield RedisRateLimiter(redis, prefix=prefix)
    finally:
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_allows_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    assert await limiter.hit("k", limit=3, window=60) == 2
    assert await limiter.hit("k", limit=3, window=60) == 1
    assert await limiter.hit("k", limit=3, window=60) == 0
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("k", limit=3, window=60)
    assert refused.value.retry_after == 60
    assert refused.value.status == 429
    assert await limiter.hit("other", limit=3, window=60) == 2


async def test_window_slides(limiter: RateLimiter) -> None:
    await limiter.hit("k", limit=2, window=60)
    clock.travel(timedelta(seconds=40))
    await limiter.hit("k", limit=2, window=60)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("k", limit=2, window=60)
    assert refused.value.retry_after == 20
    clock.travel(timedelta(seconds=21))
    assert await limiter.hit("k", limit=2, window=60) == 0
    with pytest.raises(RateLimited) as again:
        await limiter.hit("k", limit=2, window=60)
    assert again.value.retry_after == 39


async def test_reset_forgets_hits(limiter: RateLimiter) -> None:
    await limiter.hit("k", limit=1, window=60)
    await limiter.reset("k")
    assert await limiter.hit("k", limit=1, window=60) == 0


async def test_memory_limiter_sweeps_stale_keys() -> None:
    limiter = MemoryRateLimiter(max_keys=2)
    await limiter.hit("a", limit=5, window=10)
    await limiter.hit("b", limit=5, window=60)
    clock.travel(timedelta(seconds=11))
    await limiter.hit("c", limit=5, window=10)
    assert sorted(limiter._hits) == ["b", "c"]


@pytest.mark.redis
async def test_api_uses_redis_when_configured(db: Database) -> None:
    url = await _redis_or_skip()
    runtime = build(make_settings(db.url, redis_url=url, sms_per_ip_per_hour=1))
    await runtime.db.dispose()
    runtime.db = db
    assert isinstance(runtime.ratelimiter, RedisRateLimiter)
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    await runtime.ratelimiter.reset(f"sms:ip:{ip}")
    transport = httpx.ASGITransport(app=create_app(runtime=runtime), client=(ip, 4000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = await http.post("/api/v1/auth/sms/send", json={"phone": "13700000001"})
            second = await http.post("/api/v1/auth/sms/send", json={"phone": "13700000002"})
        assert first.status_code == 200
        assert second.status_code == 429
        assert second.headers["retry-after"] == "3600"
        assert second.json()["code"] == "rate_limited"
    finally:
        await runtime.ratelimiter.reset(f"sms:ip:{ip}")
        await runtime.ratelimiter.close()
        await runtime.wechat.aclose()
        await runtime.sms.aclose()
