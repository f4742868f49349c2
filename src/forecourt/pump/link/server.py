"""The server side of the pump link: one subscriber loop per process that runs it.

Each station's messages pass two ordered stages (`link.stations`), different stations
concurrently:

1. The reader stage decodes each message (a ProtocolError is refused, never raised) and applies
   what it can to the in-memory view of its fuelling point (`pump.progress_cache`): a progress
   report that only moves the running totals is published live and acknowledged at once (stored
   later); a state report is published live at once and goes on to stage 2 to be stored.
   Everything else goes to stage 2 as it is; while such a message waits there, later messages of
   its fuelling point (of its station, for presence and command acks) are not applied in
   memory either but follow it, so each fuelling point's order is kept.
2. The writer stage takes everything queued for the station (up to `WRITE_BATCH` messages) and
   applies it through `pump.ingest` in ONE unit of work (group commit), then publishes the live
   messages, the SaleAcks/DeliveryAcks and acknowledges the messages to the broker. A sale is
   thus acknowledged only after it committed. If one message of a batch is refused, the batch
   rolls back and its messages are applied again one unit of work each; the refused one rolls
   back, then a second unit of work records the refusal (alert, counter) and answers it. A
   state report published early whose unit of work arrives elsewhere (refused, duplicate) is
   corrected: its fuelling point's committed state is published, or `resync` is sent.

Database errors are retried a few times; if the database stays unreachable the loop drops the
connection without acknowledging the messages in hand, so the broker delivers them again
after the reconnect. The loop reconnects by itself with exponential backoff; the broker keeps
the persistent session (subscriptions and QoS 1 messages) meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.errors import AppError
from forecourt.kit import clock
from forecourt.pump import ingest, metrics, protocol
from forecourt.pump.effects import Effects
from forecourt.pump.link.base import AckingClient, Delivery, LinkClient, Message
from forecourt.pump.link.stations import StationBatches, StationQueues
from forecourt.pump.live import RESYNC
from forecourt.pump.messages import iso
from forecourt.pump.progress_cache import Key, ProgressCache, ProgressUnit
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
WRITE_BATCH = 50  # messages of one station stored in one unit of work at most
# What a waiting message of these kinds holds back: its station (None) or its fuelling point.
_STATION_WIDE = frozenset({TopicKind.GATEWAY_ONLINE, TopicKind.COMMAND_ACK})
_FP_KINDS = frozenset(
    {TopicKind.FP_STATE, TopicKind.FP_PROGRESS, TopicKind.FP_SALE, TopicKind.FP_SALE_STATUS}
)

_active: PumpLink | None = None


def active() -> PumpLink:
    """The pump link of this process (outbox handlers publish commands through it)."""
    if _active is None:
        raise RuntimeError("no pump link in this process: build the Runtime first")
    return _active


@dataclass(eq=False)
class Job:
    """A message waiting in its station's writer stage for its unit of work."""

    message: Message
    decoded: protocol.Decoded | None  # None: refused when decoded (`refusal`)
    order: int
    started: float
    delivery: Delivery | None = None
    refusal: tuple[str, str] | None = None  # (code, reason)
    hold: Key | tuple[str, None] | None = None  # what it holds back from flushing
    blocks: bool = False  # later messages of `hold` wait for it instead of memory
    early: ingest.Early | None = None  # already published live from memory

    @property
    def code(self) -> str:
        """The station code of its topic ("" outside the tree)."""
        return (
            self.decoded.topic.station if self.decoded is not None else _station(self.message.topic)
        )


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
        self.progress.held = self._is_held
        self.handled = 0
        self._held: Counter[Key | tuple[str, None]] = Counter()  # jobs in the writer stage
        self._blocking: Counter[Key | tuple[str, None]] = Counter()
        self._writers: StationBatches[Job] | None = None
        # Station code -> id, read once: no API renames a station. A station deleted and created
        # again under its code gets a new id, so a failed unit of work forgets its stations'
        # ids and the retry reads them again (`_forget_stations`).
        self._station_ids: dict[str, int] = {}
        _active = self

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the subscriber loop in the background (until `stop`).

        Everything alive by then (the application's modules, mostly) is moved out of the cyclic
        collector's scans first (`gc.freeze()`): otherwise every full collection walks those
        hundreds of thousands of objects and stalls the loop for tens of milliseconds, which
        shows directly in live latencies.
        """
        gc.collect()
        gc.freeze()
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
        writers: StationBatches[Job] = StationBatches(
            self._write, maxsize=STATION_QUEUE_SIZE, batch=WRITE_BATCH
        )
        self._writers = writers

        async def read() -> None:
            async for delivery in _deliveries(client):
                await queues.put(_station(delivery.message.topic), delivery)

        reader = asyncio.create_task(read(), name="pump-link-reader")
        try:
            await queues.wait(reader, writers)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await queues.close()
            await writers.close()
            self._writers = None
            # Messages in hand are delivered again: what memory applied ahead of them goes.
            self._held.clear()
            self._blocking.clear()
            self.progress.views.clear()

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        """SQLite has one writer: our units of work take turns instead of sleeping on its lock."""
        if self.runtime.db.dialect == "sqlite":
            return self._sqlite_writer
        return contextlib.nullcontext()

    async def _work(self, delivery: Delivery) -> None:
        """Reader stage: apply in memory what can be, hand the rest to the station's writer."""
        job = await self._front(delivery)
        if job is None:
            delivery.ack()
            return
        assert self._writers is not None
        if job.hold is not None:
            self._held[job.hold] += 1
            if job.blocks:
                self._blocking[job.hold] += 1
        await self._writers.put(job.code, job)

    def _is_held(self, key: Key) -> bool:
        """Whether messages of this fuelling point (or its station) wait for a unit of work."""
        return self._held[key] > 0 or self._held[(key[0], None)] > 0

    def _blocked(self, hold: Key | tuple[str, None] | None) -> bool:
        if hold is None:
            return False
        return self._blocking[hold] > 0 or self._blocking[(hold[0], None)] > 0

    async def _front(self, delivery: Delivery) -> Job | None:
        """The message handled in memory (None), or its job for the writer stage."""
        message = delivery.message
        job = Job(message, None, self.progress.next_order(), time.perf_counter(), delivery=delivery)
        try:
            decoded = protocol.decode(message.topic, message.payload)
        except protocol.ProtocolError as exc:
            job.refusal = (exc.kind.value, exc.reason)
            return job
        job.decoded = decoded
        topic = decoded.topic
        if topic.kind in _STATION_WIDE:
            job.hold, job.blocks = (topic.station, None), True
            return job
        if topic.kind not in _FP_KINDS or topic.number is None:
            return job  # tanks: nothing in memory depends on them
        job.hold = (topic.station, topic.number)
        job.blocks = topic.kind is not TopicKind.FP_SALE  # a sale never changes the fp's view
        if self._blocked(job.hold) or not job.blocks:
            return job
        now = clock.now()
        fast = ingest.progress_in_memory(self.progress, decoded, now=now, order=job.order)
        if fast is not None:
            await self._done(job, fast)
            return None
        early = ingest.state_in_memory(self.progress, decoded, now=now, order=job.order)
        if early is None:
            return job
        if early.expected is None:  # a duplicate by the view: nothing to store
            await self._done(job, early.effects)
            return None
        await self._publish_live(early.effects)
        job.early, job.blocks = early, False
        return job

    async def _done(self, job: Job, effects: Effects, *, live: bool = True) -> None:
        """Count a handled message and send what it leaves to do."""
        metrics.MESSAGES.labels(_kind(job.message.topic), effects.outcome).inc()
        await self._publish_acks(effects)
        if live:
            await self._publish_live(effects)
        self.handled += 1
        metrics.HANDLE_SECONDS.observe(time.perf_counter() - job.started)

    async def _write(self, jobs: list[Job]) -> None:
        """Writer stage: store a station's queued messages in one unit of work, then answer."""
        try:
            results = await self._commit(jobs)
            for job, effects, unit in results:
                if unit is not None:
                    self.progress.commit(unit)
                await self._done(job, effects, live=self._settle_early(job, effects, unit))
                if job.delivery is not None:
                    job.delivery.ack()
        finally:
            for job in jobs:
                if job.hold is not None:
                    self._held[job.hold] -= 1
                    if job.blocks:
                        self._blocking[job.hold] -= 1
                    if self._held[job.hold] <= 0:
                        del self._held[job.hold]
                        self._blocking.pop(job.hold, None)

    def _settle_early(self, job: Job, effects: Effects, unit: ProgressUnit | None) -> bool:
        """Whether the unit of work's live messages are still to be published.

        A state report published from memory needs nothing more when its unit of work arrived
        at the same fuelling point; otherwise the view is dropped and the committed state (or a
        `resync`, when the report was refused) goes out.
        """
        early = job.early
        if early is None or early.expected is None:
            return True
        assert job.decoded is not None
        assert job.decoded.topic.number is not None
        key = (job.decoded.topic.station, job.decoded.topic.number)
        view = unit.views.get(key) if unit is not None else None
        if view is not None and view.point == early.expected:
            return False
        self.progress.forget(*key)
        if not any(m.get("type") == "fp" for m in effects.live):
            effects.live.append(dict(RESYNC))
        return True

    async def _commit(self, jobs: list[Job]) -> list[tuple[Job, Effects, ProgressUnit | None]]:
        """Apply the jobs in one unit of work (each on its own when one of them is refused)."""
        if len(jobs) == 1 and jobs[0].decoded is not None:
            job = jobs[0]
            assert job.decoded is not None
            effects, unit = await self._apply(job.message, job.decoded, order=job.order)
            return [(job, effects, unit)]
        db = self.runtime.db
        for attempt in range(DB_ATTEMPTS):
            out: list[tuple[Job, Effects, ProgressUnit | None]] = []
            try:
                async with self._writing(), db.unit_of_work() as session:
                    for job in jobs:
                        if job.refusal is not None:
                            code, reason = job.refusal
                            out.append((job, await self._refusal(session, job, code, reason), None))
                            continue
                        assert job.decoded is not None
                        unit = self.progress.begin(job.code, order=job.order)
                        effects = await ingest.apply(
                            session,
                            job.decoded,
                            now=clock.now(),
                            progress=unit,
                            station_id=await self._station_id(session, job.code),
                        )
                        out.append((job, effects, unit))
            except AppError:  # one of them is refused: each on its own, in order
                self._forget_stations(job.code for job in jobs)
                return [result for job in jobs for result in await self._commit([job])]
            except DBAPIError:
                self._forget_stations(job.code for job in jobs)
                if attempt == DB_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                return out
        raise AssertionError("unreachable")

    async def _station_id(self, session: AsyncSession, code: str) -> int | None:
        """The station's id by code: read once, then kept (an unknown code is read each time)."""
        found = self._station_ids.get(code)
        if found is None:
            found = await ingest.station_id(session, code)
            if found is not None:
                self._station_ids[code] = found
        return found

    def _forget_stations(self, codes: Iterable[str]) -> None:
        """Read these stations' ids again next time (their unit of work failed)."""
        for code in codes:
            self._station_ids.pop(code, None)

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
            if fast is not None:
                effects = fast
            else:
                effects, unit = await self._apply(message, decoded)
                if unit is not None:
                    self.progress.commit(unit)
        metrics.MESSAGES.labels(kind, effects.outcome).inc()
        await self._after_commit(effects)
        self.handled += 1
        metrics.HANDLE_SECONDS.observe(time.perf_counter() - started)
        return effects

    async def _apply(
        self, message: Message, decoded: protocol.Decoded, *, order: int | None = None
    ) -> tuple[Effects, ProgressUnit | None]:
        """One message in its own unit of work; its progress unit (None when refused).

        `order`: the message's arrival order (a new one when not given); the caller commits
        the unit to the progress cache.
        """
        db = self.runtime.db
        code = decoded.topic.station
        for attempt in range(DB_ATTEMPTS):
            unit = self.progress.begin(code, order=order)
            try:
                async with self._writing(), db.unit_of_work() as session:
                    effects = await ingest.apply(
                        session,
                        decoded,
                        now=clock.now(),
                        progress=unit,
                        station_id=await self._station_id(session, code),
                    )
            except AppError as exc:
                self.progress.forget(code, decoded.topic.number)
                self._forget_stations((code,))
                return await self._refuse(message, exc.code, exc.detail), None
            except DBAPIError:
                self._forget_stations((code,))
                if attempt == DB_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                return effects, unit
        raise AssertionError("unreachable")

    async def _refusal(self, session: AsyncSession, job: Job, code: str, detail: str) -> Effects:
        """Count, log and record a refusal in the session's unit of work."""
        metrics.REFUSED.labels(code).inc()
        log.warning(
            "pump message refused",
            extra={"topic": job.message.topic, "code": code, "reason": detail[:500]},
        )
        return await ingest.refuse(
            session,
            topic=job.message.topic,
            payload=job.message.payload,
            code=code,
            detail=detail,
            now=clock.now(),
        )

    async def _refuse(self, message: Message, code: str, detail: str) -> Effects:
        db = self.runtime.db
        job = Job(message, None, 0, 0.0)
        for attempt in range(DB_ATTEMPTS):
            try:
                async with self._writing(), db.unit_of_work() as session:
                    return await self._refusal(session, job, code, detail)
            except DBAPIError:
                if attempt == DB_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def _after_commit(self, effects: Effects) -> None:
        await self._publish_acks(effects)
        await self._publish_live(effects)

    async def _publish_acks(self, effects: Effects) -> None:
        for item in effects.publish:
            try:
                await self.publish(item.topic, item.payload, retain=item.retain)
            except Exception as exc:
                # The gateway resends until acknowledged; the repeat is answered `duplicate`.
                log.warning("ack not published", extra={"topic": item.topic, "error": str(exc)})

    async def _publish_live(self, effects: Effects) -> None:
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
