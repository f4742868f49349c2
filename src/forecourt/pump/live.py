"""Live nozzle-state fan-out: in-process, or across API nodes through Redis pub/sub.

Every WebSocket gets its own bounded queue. Publishing never waits for a subscriber: when a
queue is full the subscriber is marked too slow and dropped (its WebSocket is closed and the
client reconnects for a fresh snapshot), so one slow client never delays the others.

`RedisHub` publishes to one channel per station and keeps ONE subscriber connection per process.
It subscribes to a station's channel while at least one local WebSocket watches that station,
and fans each message out to the local queues. When the subscriber connection breaks it
reconnects with backoff, resubscribes, and sends `{"type": "resync"}` to the local subscribers
of every station it resubscribed to (messages may have been lost in between; the WebSocket
answers with a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
RESYNC: dict[str, Any] = {"type": "resync"}

DROPPED = Counter(
    "forecourt_live_subscribers_dropped_total", "Live subscribers dropped for reading too slowly"
)
PUBLISH_FAILED = Counter(
    "forecourt_live_publish_failed_total", "Live messages that could not be published"
)
RECONNECTS = Counter(
    "forecourt_live_redis_reconnects_total", "Reconnects of the Redis live subscriber connection"
)


class SubscriberTooSlow(Exception):
    """The subscriber's queue overflowed; it missed messages and must start again."""


class Subscription:
    """One subscriber's bounded queue; an async iterator of messages."""

    def __init__(self, station_id: int, *, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.station_id = station_id
        self.dropped = False
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=maxsize)

    def offer(self, message: dict[str, Any]) -> bool:
        """Queue a message without waiting; False (and dropped) when the queue is full."""
        if self.dropped:
            return False
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            DROPPED.inc()
            return False
        return True

    async def get(self, wait_seconds: float | None = None) -> dict[str, Any] | None:
        """The next message, or None after `wait_seconds`; raises SubscriberTooSlow."""
        if self.dropped:
            raise SubscriberTooSlow(f"subscriber of station {self.station_id} fell behind")
        if wait_seconds is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), wait_seconds)
        except TimeoutError:
            return None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        message = await self.get()
        assert message is not None
        return message


class LiveHub(Protocol):
    """Publishes station changes to every WebSocket subscriber on every API node."""

    async def publish(self, station_id: int, message: dict[str, Any]) -> None:
        """Send a change to the station's subscribers (best effort; never raises)."""
        ...

    def subscribe(
        self, station_id: int, *, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> AbstractAsyncContextManager[Subscription]:
        """Subscribe for the duration of the block; messages published later arrive in it."""
        ...

    async def close(self) -> None:
        """Release connections and background tasks."""
        ...


class _LocalFanout:
    """Local subscribers per station."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscription]] = {}

    def _deliver(self, station_id: int, message: dict[str, Any]) -> None:
        subs = self._subscribers.get(station_id)
        if not subs:
            return
        for sub in list(subs):
            if not sub.offer(message):
                subs.discard(sub)

    def _add(self, sub: Subscription) -> bool:
        """Register; True when it is the station's first local subscriber."""
        subs = self._subscribers.setdefault(sub.station_id, set())
        subs.add(sub)
        return len(subs) == 1

    def _remove(self, sub: Subscription) -> bool:
        """Unregister; True when the station has no local subscriber left."""
        subs = self._subscribers.get(sub.station_id)
        if subs is None:
            return False
        subs.discard(sub)
        if subs:
            return False
        del self._subscribers[sub.station_id]
        return True

    def subscriber_count(self, station_id: int) -> int:
        """Local subscribers of a station (for tests and metrics)."""
        return len(self._subscribers.get(station_id, ()))


class InProcessHub(_LocalFanout):
    """Fan-out inside one process (the embedded default)."""

    async def publish(self, station_id: int, message: dict[str, Any]) -> None:
        """Queue the message for each local subscriber of the station."""
        self._deliver(station_id, message)

    @asynccontextmanager
    async def subscribe(
        self, station_id: int, *, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the block."""
        sub = Subscription(station_id, maxsize=queue_size)
        self._add(sub)
        try:
            yield sub
        finally:
            self._remove(sub)

    async def close(self) -> None:
        """Nothing to release."""


class RedisHub(_LocalFanout):
    """Fan-out across processes over Redis pub/sub, one subscriber connection per process."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "forecourt:live:",
        ping_seconds: float = 5.0,
        subscribe_timeout: float = 5.0,
        max_backoff: float = 5.0,
        client_name: str = "forecourt-live",
    ) -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.ping_seconds = ping_seconds
        self.subscribe_timeout = subscribe_timeout
        self.max_backoff = max_backoff
        self.client_name = client_name
        self._publisher: Redis = Redis.from_url(url)
        # No hidden retries on the subscriber: a broken link surfaces here and we resubscribe.
        self._subscriber: Redis = Redis.from_url(
            url, retry=Retry(NoBackoff(), 0), client_name=client_name
        )
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._confirmed: dict[int, asyncio.Event] = {}
        self._resync: set[int] = set()
        self._connected = asyncio.Event()
        self._closed = False

    def channel(self, station_id: int) -> str:
        """The Redis channel of a station."""
        return f"{self.prefix}{station_id}"

    async def publish(self, station_id: int, message: dict[str, Any]) -> None:
        """PUBLISH to the station's channel; a Redis failure is logged and counted."""
        try:
            await self._publisher.publish(self.channel(station_id), orjson.dumps(message))
        except (RedisError, OSError) as exc:
            PUBLISH_FAILED.inc()
            log.warning("live publish failed", extra={"station_id": station_id, "error": str(exc)})

    @asynccontextmanager
    async def subscribe(
        self, station_id: int, *, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> AsyncIterator[Subscription]:
        """Subscribe; returns once Redis has confirmed the station's channel subscription."""
        sub = Subscription(station_id, maxsize=queue_size)
        await self._ensure_reader()
        async with self._lock:
            first = self._add(sub)
            if first:
                self._confirmed[station_id] = asyncio.Event()
            confirmed = self._confirmed[station_id]
            if first:
                await self._send_subscribe(station_id)
        try:
            await asyncio.wait_for(confirmed.wait(), self.subscribe_timeout)
        except BaseException:
            async with self._lock:
                await self._forget(sub)
            raise
        try:
            yield sub
        finally:
            async with self._lock:
                await self._forget(sub)

    async def _forget(self, sub: Subscription) -> None:
        if self._remove(sub):
            self._confirmed.pop(sub.station_id, None)
            self._resync.discard(sub.station_id)
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(self.channel(sub.station_id))

    async def _send_subscribe(self, station_id: int) -> None:
        if self._pubsub is None:
            return  # the reader subscribes every wanted channel once it has reconnected
        try:
            await self._pubsub.subscribe(self.channel(station_id))
        except (RedisError, OSError):
            log.warning("live subscribe failed; the reader will retry", exc_info=True)

    async def _ensure_reader(self) -> None:
        if self._closed:
            raise RuntimeError("hub closed")
        if self._reader is None or self._reader.done():
            self._connected.clear()
            self._reader = asyncio.create_task(self._read_loop(), name="live-redis-reader")
        await asyncio.wait_for(self._connected.wait(), self.subscribe_timeout)

    async def _connect(self, *, again: bool) -> None:
        pubsub = self._subscriber.pubsub()
        await pubsub.connect()  # type: ignore[no-untyped-call]
        self._pubsub = pubsub
        async with self._lock:
            wanted = list(self._subscribers)
            if again:
                self._resync.update(wanted)
            if wanted:
                await pubsub.subscribe(*(self.channel(s) for s in wanted))
        self._connected.set()

    async def _drop_connection(self) -> None:
        self._connected.clear()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read_loop(self) -> None:
        backoff = 0.05
        again = False
        loop = asyncio.get_running_loop()
        while not self._closed:
            try:
                await self._connect(again=again)
                again = True
                backoff = 0.05
                ping_sent: float | None = None
                while True:
                    assert self._pubsub is not None
                    raw = await self._pubsub.get_message(timeout=self.ping_seconds)
                    if raw is None:
                        if ping_sent is not None and loop.time() - ping_sent > self.ping_seconds:
                            raise ConnectionError("no answer to PING")
                        if ping_sent is None:
                            await self._pubsub.ping()
                            ping_sent = loop.time()
                        continue
                    ping_sent = None
                    self._handle(raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect with backoff
                RECONNECTS.inc()
                log.warning("live subscriber connection lost: %s", exc)
                await self._drop_connection()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _station_of(self, channel: Any) -> int | None:
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if not name.startswith(self.prefix):
            return None
        try:
            return int(name[len(self.prefix) :])
        except ValueError:
            return None

    def _handle(self, raw: dict[str, Any]) -> None:
        kind = raw.get("type")
        station_id = self._station_of(raw.get("channel"))
        if station_id is None:
            return
        if kind == "message":
            try:
                message = orjson.loads(raw["data"])
            except orjson.JSONDecodeError:
                log.warning("undecodable live message on %s", raw.get("channel"))
                return
            if isinstance(message, dict):
                self._deliver(station_id, message)
        elif kind == "subscribe":
            event = self._confirmed.get(station_id)
            if event is not None:
                event.set()
            if station_id in self._resync:
                self._resync.discard(station_id)
                self._deliver(station_id, RESYNC)

    async def close(self) -> None:
        """Stop the reader and close both connections."""
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await self._drop_connection()
        await self._subscriber.aclose()
        await self._publisher.aclose()


def from_url(redis_url: str | None) -> LiveHub:
    """A Redis hub when a Redis URL is configured, else the in-process hub."""
    return RedisHub(redis_url) if redis_url else InProcessHub()
