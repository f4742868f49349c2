"""A simulated station speaker: plays each announcement once and acknowledges it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime

from forecourt.pump import protocol
from forecourt.pump.link.base import LinkClient, Message, Will
from forecourt.pump.protocol import TopicKind
from forecourt.pump.simulator.clock import SimClock
from forecourt.pump.simulator.links import Connector

log = logging.getLogger("forecourt.simulator")


@dataclass(frozen=True)
class SpeakerConfig:
    """Dedup window (section 9: at least 10 minutes or 200 ids) and injected drop rates."""

    window_seconds: float = 600.0
    window_min_ids: int = 200
    window_max_ids: int = 100_000
    drop_say_rate: float = 0.0
    drop_ack_rate: float = 0.0
    firmware: str = "spk-sim-1"


class SpeakerDevice:
    """Speaker `number` of a station on its `speaker/{n}/say` topic."""

    def __init__(
        self,
        station: str,
        number: int,
        connect: Connector,
        *,
        clock: SimClock | None = None,
        config: SpeakerConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.station = station
        self.number = number
        self.client_id = f"fc-spk-{station}-{number}"
        self._connect = connect
        self.clock = clock or SimClock()
        self.config = config or SpeakerConfig()
        self.rng = rng or random.Random()
        self.played: Counter[str] = Counter()
        self.heard: list[str] = []
        self.received = 0
        self.dropped_says = 0
        self.dropped_acks = 0
        self.repeats = 0
        self._seen: OrderedDict[str, tuple[float, protocol.SpeakerAck]] = OrderedDict()
        self.client: LinkClient | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def say_topic(self) -> str:
        """The topic this speaker listens on."""
        return protocol.build_topic(TopicKind.SPEAKER_SAY, self.station, self.number)

    async def start(self) -> None:
        """Connect (persistent session, retained will), go online and start listening."""
        topic = protocol.build_topic(TopicKind.SPEAKER_ONLINE, self.station, self.number)
        now = self.clock.now()
        will = Will(topic, protocol.encode(protocol.DeviceStatus(online=False, ts=now)))
        client = self._connect(self.client_id, will)
        await client.connect()
        for topic_filter in protocol.speaker_filters(self.station, self.number):
            await client.subscribe(topic_filter)
        online = protocol.DeviceStatus(online=True, ts=now, firmware=self.config.firmware)
        await client.publish(topic, protocol.encode(online), retain=True)
        self.client = client
        self._task = asyncio.create_task(self._listen(client), name=f"{self.client_id}-listen")
        self.ready.set()

    async def stop(self) -> None:
        """Go offline cleanly."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        client = self.client
        if client is not None:
            topic = protocol.build_topic(TopicKind.SPEAKER_ONLINE, self.station, self.number)
            offline = protocol.DeviceStatus(online=False, ts=self.clock.now())
            with contextlib.suppress(Exception):
                await client.publish(topic, protocol.encode(offline), retain=True)
                await client.disconnect()
        self.ready.clear()

    async def _listen(self, client: LinkClient) -> None:
        # Acks leave through their own task so that waiting for the broker's PUBACK of one
        # ack never holds up reading the next announcement.
        outbox: asyncio.Queue[protocol.SpeakerAck] = asyncio.Queue()
        sender = asyncio.create_task(self._send_acks(client, outbox))
        try:
            async for message in client.messages():
                if message.topic != self.say_topic:
                    continue
                try:
                    ack = self.handle(message)
                except Exception:
                    log.exception("speaker %s failed", self.client_id)
                    continue
                if ack is None:
                    continue
                if self.rng.random() < self.config.drop_ack_rate:
                    self.dropped_acks += 1
                    continue
                outbox.put_nowait(ack)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send_acks(
        self, client: LinkClient, outbox: asyncio.Queue[protocol.SpeakerAck]
    ) -> None:
        topic = protocol.build_topic(TopicKind.SPEAKER_ACK, self.station, self.number)
        while True:
            ack = await outbox.get()
            await client.publish(topic, protocol.encode(ack))

    def handle(self, message: Message) -> protocol.SpeakerAck | None:
        """Play a new announcement (once), or answer a repeat with the stored ack."""
        self.received += 1
        if self.rng.random() < self.config.drop_say_rate:
            self.dropped_says += 1
            return None
        now = self.clock.now()
        try:
            announcement = protocol.decode(message.topic, message.payload).message
        except protocol.ProtocolError:
            return self._reject(message.payload, now)
        assert isinstance(announcement, protocol.Announcement)
        self._forget_old()
        known = self._seen.get(announcement.message_id)
        if known is not None:
            self.repeats += 1
            return known[1]
        if now >= announcement.valid_until:
            ack = protocol.SpeakerAck(message_id=announcement.message_id, status="expired", ts=now)
        else:
            self.played[announcement.message_id] += 1
            self.heard.append(announcement.text)
            ack = protocol.SpeakerAck(message_id=announcement.message_id, status="played", ts=now)
        self._seen[announcement.message_id] = (time.monotonic(), ack)
        return ack

    def _reject(self, payload: bytes, now: datetime) -> protocol.SpeakerAck | None:
        try:
            message_id = json.loads(payload)["message_id"]
            return protocol.SpeakerAck(
                message_id=message_id, status="rejected", reason="invalid", ts=now
            )
        except Exception:
            return None

    def _forget_old(self) -> None:
        limit = time.monotonic() - self.config.window_seconds
        while self._seen:
            oldest_id, (seen_at, _) = next(iter(self._seen.items()))
            over_cap = len(self._seen) > self.config.window_max_ids
            expired = seen_at < limit and len(self._seen) > self.config.window_min_ids
            if not (over_cap or expired):
                break
            del self._seen[oldest_id]
