"""The server side of the pump link: one subscriber loop per process that runs it.

Messages go to one ordered, bounded queue per station (`link.stations`); each station's worker
handles its messages one at a time, different stations concurrently. A message is
acknowledged to the broker only once it has been handled. For every gateway message: decode
(a ProtocolError is refused, never raised), then either apply a progress report in memory
(`ingest.progress_in_memory`: published live at once, stored later by `pump.progress_cache`)
or apply it through `pump.ingest` in one unit of work, and after the commit publish the live
messages and the SaleAck/DeliveryAck. A refused message rolls its unit of work back, then a
second unit of work records the refusal (alert, counter) and answers it. Database errors are
retried a few times; if the database stays unreachable the loop drops the connection without
acknowledging the message, so the broker delivers it again after the reconnect. The loop
reconnects by itself with exponential backoff; the broker keeps the persistent session
(subscriptions and QoS 1 messages) meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from forecourt.errors import AppError
from forecourt.kit import clock
from forecourt.pump import ingest, metrics, protocol
from forecourt.pump.effects import Effects
from forecourt.pump.link.base import AckingClient, Delivery, LinkClient, Message
from forecourt.pump.link.stations import StationQueues
from forecourt.pump.messages import iso
from forecourt.pump.progress_cache import ProgressCache
from forecourt.pump.protocol import TopicKind

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

log = logging.getLogger("forecourt.pump.link")

# Speakers have their own client (notify); the link loop reads what gateways publish.
GATEWAY_KINDS = tuple(
    k
    for k in TopicKind
    if k.upstream and k not in (TopicKind.SPEAKER_ONLINE, TopicKind.SPEAKER_ACK)
)
DB_ATTEMPTS = 4
BACKOFF_START = 0.2
BACKOFF_MAX = 30.0
STATION_QUEUE_SIZE = 100  # messages in hand per station before reading waits
RECEIVE_MAXIMUM = 1000  # unacknowledged QoS 1 messages the broker may send us (MQTT 5)

_active: PumpLink | None = None


def active() -> PumpLink:
    """The pump link of this process (outbox handlers publish commands through it)."""
    if _active is None:
        raise RuntimeError("no pump link in this process: build the Runtime first")
    return _active


def gateway_filters(shared_group: str | None = None) -> list[str]:
    """What the server subscribes to: every gateway topic of every station."""
    filters = [protocol.topic_filter(kind) for kind in GATEWAY_KINDS]
    if shared_group:
        return [f"$share/{shared_group}/{f}" for f in filters]
    return filters


class PumpLink:
    """Runs the subscriber loop (when started) and publishes for this process."""

    def __init__(self, runtime: Runtime) -> None:
        global _active
        self.runtime = runtime
        settings = runtime.settings
        self.client_id = f"{settings.mqtt_client_prefix}-server"
        self.filters = gateway_filters(settings.mqtt_shared_group)
        self.connected = asyncio.Event()
        self._client: LinkClient | None = None
        self._publisher: LinkClient | None = None
        self._publisher_lock = asyncio.Lock()
        self._sqlite_writer = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.progress = ProgressCache(settings.pump_progress_persist_seconds)
        self.handled = 0
        _active = self

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the subscriber loop in the background (until `stop`)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="pump-link")
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self.flush_progress(), name="pump-link-progress")

    async def stop(self) -> None:
        """Stop the loop and close the connections (cleanly: no will is published)."""
        global _active
        task, self._task = self._task, None
        flusher, self._flusher = self._flusher, None
        for background in (task, flusher):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await background
        if flusher is not None:
            with contextlib.suppress(Exception):  # the last progress; lost if the database is down
                async with self._writing():
                    await self.progress.flush(self.runtime.db, now=clock.now(), everything=True)
        for client in (self._client, self._publisher):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.disconnect()
        self._client = self._publisher = None
        self.connected.clear()
        if _active is self:
            _active = None

    @property
    def running(self) -> bool:
        """Whether the subscriber loop is running."""
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Connect, subscribe and handle messages; reconnect with backoff when the link drops."""
        delay = BACKOFF_START
        while True:
            metrics.RECONNECTS.inc()
            client = self.runtime.link_client(self.client_id)
            _widen_window(client)
            try:
                await client.connect()
                for topic_filter in self.filters:
                    await client.subscribe(topic_filter)
                self._client = client
                self.connected.set()
                metrics.CONNECTED.set(1)
                log.info("pump link connected", extra={"client_id": self.client_id})
                delay = BACKOFF_START
                await self._serve(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "pump link lost; reconnecting",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": delay},
                )
            finally:
                self._client = None
                self.connected.clear()
                metrics.CONNECTED.set(0)
                with contextlib.suppress(Exception):
                    await client.disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _serve(self, client: LinkClient) -> None:
        """Read the connection into the station queues until it drops or a worker fails."""
        queues: StationQueues[Delivery] = StationQueues(self._work, maxsize=STATION_QUEUE_SIZE)

        async def read() -> None:
            async for delivery in _deliveries(client):
                await queues.put(_station(delivery.message.topic), delivery)

        reader = asyncio.create_task(read(), name="pump-link-reader")
        try:
            await queues.wait(reader)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await queues.close()

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        """SQLite has one writer: our units of work take turns instead of sleeping on its lock."""
        if self.runtime.db.dialect == "sqlite":
            return self._sqlite_writer
        return contextlib.nullcontext()

    async def _work(self, delivery: Delivery) -> None:
        await self.handle(delivery.message)
        delivery.ack()

    async def flush_progress(self) -> None:
        """Store the in-memory progress that is due, every fraction of the interval."""
        tick = min(1.0, max(0.05, self.progress.interval / 4))
        while True:
            await asyncio.sleep(tick)
            try:
                async with self._writing():
                    await self.progress.flush(self.runtime.db, now=clock.now())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # kept in memory; the next tick tries again
                log.warning("progress not stored", extra={"error": f"{type(exc).__name__}: {exc}"})

    # -- publishing -----------------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, expiry_seconds: int | None = None
    ) -> None:
        """Publish (QoS 1) through the loop's connection, or a publish-only one of this process."""
        client = self._client
        if client is None:
            client = await self._publishing_client()
        try:
            await client.publish(topic, payload, retain=retain, expiry_seconds=expiry_seconds)
        except Exception:
            if client is self._publisher:
                self._publisher = None
                with contextlib.suppress(Exception):
                    await client.disconnect()
            raise

    async def _publishing_client(self) -> LinkClient:
        async with self._publisher_lock:
            if self._publisher is None:
                from forecourt.pump.link.mqtt import node_suffix

                client = self.runtime.link_client(
                    f"{self.runtime.settings.mqtt_client_prefix}-pub-{node_suffix()}",
                    persistent=False,
                )
                await client.connect()
                self._publisher = client
            return self._publisher

    # -- handling -------------------------------------------------------------------------------

    async def handle(self, message: Message) -> Effects:
        """Handle one message completely (never raises for bad input)."""
        started = time.perf_counter()
        kind = _kind(message.topic)
        try:
            decoded = protocol.decode(message.topic, message.payload)
        except protocol.ProtocolError as exc:
            effects = await self._refuse(message, exc.kind.value, exc.reason)
        else:
            fast = ingest.progress_in_memory(self.progress, decoded, now=clock.now())
            effects = fast if fast is not None else await self._apply(message, decoded)
        metrics.MESSAGES.labels(kind, effects.outcome).inc()
        await self._after_commit(effects)
        self.handled += 1
        metrics.HANDLE_SECONDS.observe(time.perf_counter() - started)
        return effects

    async def _apply(self, message: Message, decoded: protocol.Decoded) -> Effects:
        db = self.runtime.db
        for attempt in range(DB_ATTEMPTS):
            unit = self.progress.begin(decoded.topic.station)
            try:
                async with self._writing(), db.unit_of_work() as session:
                    effects = await ingest.apply(session, decoded, now=clock.now(), progress=unit)
            except AppError as exc:
                self.progress.forget(decoded.topic.station, decoded.topic.number)
                return await self._refuse(message, exc.code, exc.detail)
            except DBAPIError:
                if attempt == DB_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                self.progress.commit(unit)
                return effects
        raise AssertionError("unreachable")

    async def _refuse(self, message: Message, code: str, detail: str) -> Effects:
        metrics.REFUSED.labels(code).inc()
        log.warning(
            "pump message refused",
            extra={"topic": message.topic, "code": code, "reason": detail[:500]},
        )
        db = self.runtime.db
        for attempt in range(DB_ATTEMPTS):
            try:
                async with self._writing(), db.unit_of_work() as session:
                    return await ingest.refuse(
                        session,
                        topic=message.topic,
                        payload=message.payload,
                        code=code,
                        detail=detail,
                        now=clock.now(),
                    )
            except DBAPIError:
                if attempt == DB_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def _after_commit(self, effects: Effects) -> None:
        for item in effects.publish:
            try:
                await self.publish(item.topic, item.payload, retain=item.retain)
            except Exception as exc:
                # The gateway resends until acknowledged; the repeat is answered `duplicate`.
                log.warning("ack not published", extra={"topic": item.topic, "error": str(exc)})
        if effects.station_id is not None and effects.live:
            sent_at = clock.now()
            for live in effects.live:
                try:
                    await self.runtime.live.publish(
                        effects.station_id, {**live, "sent_at": iso(sent_at)}
                    )
                except Exception:
                    log.exception("live message not published")


def _widen_window(client: LinkClient) -> None:
    """Let the broker send many unacknowledged messages, so stations can be handled at once."""
    from forecourt.pump.link.mqtt import MqttLinkClient

    if isinstance(client, MqttLinkClient):
        client.receive_maximum = RECEIVE_MAXIMUM


async def _deliveries(client: LinkClient) -> AsyncIterator[Delivery]:
    """The client's deliveries; a plain client gives the next message once one is acked."""
    if isinstance(client, AckingClient):
        async for delivery in client.deliveries():
            yield delivery
        return
    async for message in client.messages():
        handled = asyncio.Event()
        yield Delivery(message, handled.set)
        await handled.wait()


def _station(topic: str) -> str:
    """The station level of a topic (its queue); "" for a topic outside the tree."""
    parts = topic.split("/", 3)
    return parts[2] if len(parts) > 3 and parts[0] == protocol.ROOT else ""


def _kind(topic: str) -> str:
    try:
        return protocol.parse_topic(topic).kind.name.lower()
    except protocol.ProtocolError:
        return "unknown"
