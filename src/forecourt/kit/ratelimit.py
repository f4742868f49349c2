"""Sliding-window rate limits: in memory (embedded default) or in Redis (several API nodes).

Both keep, per key, the timestamps of the hits accepted in the last `window` seconds; a hit is
accepted while fewer than `limit` remain. A refused hit is not recorded, so a client that keeps
hammering is let in again as soon as its oldest accepted hit leaves the window. Times come from
`kit.clock`, so tests can move them with `clock.travel`.
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from typing import Protocol

from redis.asyncio import Redis

from forecourt.config import Settings
from forecourt.errors import RateLimited
from forecourt.kit import clock

PREFIX = "forecourt:rl:"


class RateLimiter(Protocol):
    """Counts hits per key and refuses the ones over the limit."""

    async def hit(self, key: str, *, limit: int, window: int) -> int:
        """Record one hit; return how many remain, or raise RateLimited with Retry-After."""
        ...

    async def reset(self, key: str) -> None:
        """Forget every hit on `key`."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _retry_after(oldest: float, window: int, now: float) -> int:
    return max(1, math.ceil(oldest + window - now))


def _refuse(window: int, retry_after: int) -> RateLimited:
    return RateLimited(
        f"too many requests; try again in {retry_after} s (window {window} s)",
        retry_after=retry_after,
    )


class MemoryRateLimiter:
    """A per-process sliding-window log; correct for one API process only."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._hits: dict[str, tuple[int, deque[float]]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, *, limit: int, window: int) -> int:
        """Record one hit; return how many remain, or raise RateLimited."""
        now = clock.now().timestamp()
        entry = self._hits.get(key)
        if entry is None:
            if len(self._hits) >= self._max_keys:
                self._sweep(now)
            entry = self._hits[key] = (window, deque())
        hits = entry[1]
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            raise _refuse(window, _retry_after(hits[0], window, now))
        hits.append(now)
        return limit - len(hits)

    def _sweep(self, now: float) -> None:
        stale = [k for k, (w, hits) in self._hits.items() if not hits or hits[-1] <= now - w]
        for key in stale:
            del self._hits[key]

    async def reset(self, key: str) -> None:
        """Forget every hit on `key`."""
        self._hits.pop(key, None)

    async def close(self) -> None:
        """Nothing to release."""


# KEYS[1] = sorted set of accepted hits; ARGV = now (ms), window (ms), limit, unique member.
# Returns {1, remaining} when accepted, {0, retry_after_ms} when refused. Atomic in Redis.
_SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return {1, limit - count - 1}
"""


class RedisRateLimiter:
    """A sliding-window log kept in a Redis sorted set per key, updated by one Lua script."""

    def __init__(self, redis: Redis, *, prefix: str = PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = PREFIX) -> RedisRateLimiter:
        """A limiter on the Redis at `url` (connects lazily)."""
        return cls(Redis.from_url(url), prefix=prefix)

    async def hit(self, key: str, *, limit: int, window: int) -> int:
        """Record one hit; return how many remain, or raise RateLimited."""
        now_ms = int(clock.now().timestamp() * 1000)
        member = f"{now_ms}-{secrets.token_hex(6)}"
        accepted, value = await self._script(
            keys=[self._prefix + key], args=[now_ms, window * 1000, limit, member]
        )
        if int(accepted) == 1:
            return int(value)
        raise _refuse(window, max(1, math.ceil(int(value) / 1000)))

    async def reset(self, key: str) -> None:
        """Forget every hit on `key`."""
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def from_settings(settings: Settings) -> RateLimiter:
    """Redis when `redis_url` is set, else in memory."""
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url)
    return MemoryRateLimiter()
