"""Station speaker announcements: written in the caller's unit of work, then sent over MQTT
on the sender's own link client and resent with backoff until the speaker acknowledges."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.config import Settings
from forecourt.db import Database
from forecourt.errors import FieldError, Unprocessable
from forecourt.kit import clock
from forecourt.notify import repository
from forecourt.pump import alerts, protocol
from forecourt.pump.link.base import LinkClient, Will
from forecourt.pump.models import Announcement
from forecourt.pump.protocol import TopicKind

log = logging.getLogger("forecourt.notify.speaker")

CREATED = "notify.announcement_created"
TEXT_MAX = 100
ALERT_KIND = "speaker"
Connector = Callable[[str, Will | None], LinkClient]

SENT = Counter("forecourt_speaker_publications_total", "Announcement publications (incl. resends)")
ACKED = Counter("forecourt_speaker_acks_total", "First speaker acks applied", ["status"])
FAILED = Counter("forecourt_speaker_failed_total", "Announcements given up without an ack")
BAD_ACKS = Counter("forecourt_speaker_bad_acks_total", "Speaker messages that did not decode")

_senders: weakref.WeakSet[SpeakerSender] = weakref.WeakSet()


def new_message_id() -> str:
    """A fresh announcement id (the wire `message_id`)."""
    return f"ann_{uuid.uuid4().hex}"


async def announce(session: AsyncSession, *, station_id: int, text: str, speaker: int = 1) -> str:
    """Queue an announcement in the caller's unit of work; it is sent after the commit."""
    text = text.strip()
    if not 1 <= len(text) <= TEXT_MAX:
        raise Unprocessable(
            "announcement text must be 1-100 characters",
            errors=[FieldError("text", f"must be 1-{TEXT_MAX} characters")],
        )
    if not 1 <= speaker <= 9999:
        raise Unprocessable(
            "speaker numbers are 1-9999", errors=[FieldError("speaker", "must be 1-9999")]
        )
    now = clock.now()
    message_id = new_message_id()
    await repository.add(
        session,
        Announcement(
            id=message_id,
            station_id=station_id,
            speaker=speaker,
            text=text,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        ),
    )
    outbox.publish(session, CREATED, {"message_id": message_id, "station_id": station_id})
    return message_id


def wake_local_senders() -> None:
    """Wake every sender of this process (after an announcement was committed)."""
    for sender in list(_senders):
        sender.wake()


class SpeakerSender:
    """Publishes due announcements and applies speaker acks, on its own link client."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        connect: Connector,
        client_id: str | None = None,
        batch: int = 500,
        max_in_flight: int = 1000,
    ) -> None:
        self.db = db
        self.settings = settings
        self._connect = connect
        self.client_id = client_id or f"{settings.mqtt_client_prefix}-speaker"
        self.batch = batch
        # Flow control: first sends wait while this many publications await their ack, so a
        # slow speaker or broker is not buried under resends (resends always go out).
        self.max_in_flight = max_in_flight
        self._in_flight: dict[str, float] = {}
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._acks: dict[str, tuple[str, datetime, str | None]] = {}
        self._acks_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        _senders.add(self)

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Run the sender in the background (reconnecting when the link drops)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="speaker-sender")

    async def stop(self) -> None:
        """Stop sending; acks received but not yet stored are written first."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._flush_acks()

    def wake(self) -> None:
        """Look for due announcements now instead of at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            client = self._connect(self.client_id, None)
            try:
                await client.connect()
                for kind in (TopicKind.SPEAKER_ACK,):
                    await client.subscribe(protocol.topic_filter(kind))
                self.connected.set()
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._send_loop(client))
                    group.create_task(self._receive(client))
                    group.create_task(self._ack_loop())
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await client.disconnect()
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("speaker sender failed, restarting: %r", exc)
                with contextlib.suppress(Exception):
                    await client.disconnect()
                await asyncio.sleep(1.0)

    # -- sending -------------------------------------------------------------------------

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the `attempts`-th publication: retry, 2x, 4x ... capped (section 13)."""
        s = self.settings
        seconds = min(s.speaker_retry_seconds * 2 ** (attempts - 1), s.speaker_retry_max_seconds)
        return timedelta(seconds=seconds)

    async def _send_loop(self, client: LinkClient) -> None:
        while True:
            sent = await self.send_due(client)
            if sent < self.batch:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.speaker_poll_seconds):
                        await self._wake.wait()
                self._wake.clear()

    async def send_due(self, client: LinkClient) -> int:
        """Claim due announcements, give up on hopeless ones, publish the rest; how many."""
        now = clock.now()
        valid = timedelta(seconds=self.settings.speaker_valid_seconds)
        to_send: list[repository.Due] = []
        horizon = time.monotonic() - self.settings.speaker_valid_seconds
        self._in_flight = {i: t for i, t in self._in_flight.items() if t > horizon}
        space = max(0, self.max_in_flight - len(self._in_flight))
        async with self.db.unit_of_work() as session:
            rows = await repository.due(
                session, now=now, limit=self.batch, new_limit=min(self.batch, space)
            )
            failed = [
                r
                for r in rows
                if r.attempts >= self.settings.speaker_max_attempts or now >= r.created_at + valid
            ]
            gone = {r.id for r in failed}
            to_send = [r for r in rows if r.id not in gone]
            await repository.mark_failed(session, (r.id for r in failed))
            for r in failed:
                await alerts.raise_alert(
                    session,
                    station_id=r.station_id,
                    kind=ALERT_KIND,
                    code=f"speaker_{r.speaker}_no_ack",
                    detail=f"speaker {r.speaker} did not acknowledge {r.id} after "
                    f"{r.attempts} attempts: {r.text}",
                    now=now,
                )
            await repository.mark_attempts(
                session,
                ((r.id, r.attempts + 1, now + self.backoff(r.attempts + 1)) for r in to_send),
            )
        FAILED.inc(len(failed))
        for r in failed:
            self._in_flight.pop(r.id, None)
        for r in to_send:  # after the commit: a crash here only means a resend later
            valid_until = r.created_at + valid
            message = protocol.Announcement(
                message_id=r.id,
                station=r.station_code,
                text=r.text,
                created_at=r.created_at,
                ts=now,
                valid_until=valid_until,
            )
            await client.publish(
                protocol.build_topic(TopicKind.SPEAKER_SAY, r.station_code, r.speaker),
                protocol.encode(message),
                expiry_seconds=max(1, math.ceil((valid_until - now).total_seconds())),
            )
            self.published += 1
            self._in_flight.setdefault(r.id, time.monotonic())
            SENT.inc()
        return len(rows)

    # -- acknowledgements ----------------------------------------------------------------

    async def _receive(self, client: LinkClient) -> None:
        async for message in client.messages():
            try:
                decoded = protocol.decode(message.topic, message.payload)
            except protocol.ProtocolError as exc:
                BAD_ACKS.inc()
                log.warning("bad speaker message on %s: %s", message.topic, exc.reason)
                continue
            ack = decoded.message
            if not isinstance(ack, protocol.SpeakerAck):
                continue
            # The first ack counts; a repeat is harmless (the update is conditional).
            self._acks.setdefault(ack.message_id, (ack.status, ack.ts, ack.reason))
            if self._in_flight.pop(ack.message_id, None) is not None:
                self._wake.set()  # room in the window for a first send
            self._acks_ready.set()

    async def _ack_loop(self) -> None:
        while True:
            await self._acks_ready.wait()
            await asyncio.sleep(0.02)  # gather a batch
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        self._acks_ready.clear()
        if not self._acks:
            return
        acks, self._acks = self._acks, {}
        now = clock.now()
        async with self.db.unit_of_work() as session:
            applied = await repository.mark_acked(
                session, ((i, status, now) for i, (status, _ts, _r) in acks.items())
            )
            for message_id, station_id, speaker in applied:
                status, _ts, reason = acks[message_id]
                if status == "rejected":
                    await alerts.raise_alert(
                        session,
                        station_id=station_id,
                        kind=ALERT_KIND,
                        code=f"speaker_{speaker}_rejected",
                        detail=f"speaker {speaker} rejected {message_id}: {reason}",
                        now=now,
                    )
        for message_id, _station, _speaker in applied:
            ACKED.labels(acks[message_id][0]).inc()
