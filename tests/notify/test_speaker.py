"""Server-side speaker announcements: outbox row, sending, retry until ack, giving up."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.errors import Unprocessable
from forecourt.notify import speaker as speakers
from forecourt.notify.speaker import SpeakerSender, announce
from forecourt.outbox.models import OutboxEvent
from forecourt.pump import protocol
from forecourt.pump.link.base import Message
from forecourt.pump.link.inprocess import InProcessBroker
from forecourt.pump.models import Announcement, StationAlert
from forecourt.pump.protocol import TopicKind
from forecourt.pump.simulator.links import inprocess_connector
from forecourt.pump.simulator.speaker import SpeakerConfig, SpeakerDevice
from forecourt.runtime import Runtime
from tests.fixtures.auth import insert_station


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], *, within: float = 10.0, every: float = 0.01
) -> None:
    """Poll `check` until true; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(every)


def fast(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "speaker_retry_seconds": 0.1,
        "speaker_retry_max_seconds": 0.4,
        "speaker_max_attempts": 5,
        "speaker_valid_seconds": 60,
        "speaker_poll_seconds": 0.02,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


async def rows(db: Database) -> list[Announcement]:
    async with db.read_only() as session:
        found = list((await session.scalars(select(Announcement).order_by(Announcement.id))).all())
        session.expunge_all()  # keep the loaded values after the read-only rollback
        return found


@pytest.fixture
def broker() -> InProcessBroker:
    return InProcessBroker()


@pytest.fixture
async def station(runtime: Runtime) -> tuple[int, str]:
    code = f"SPK{random.randrange(10**6):06d}"
    return await insert_station(runtime, code=code), code


@pytest.fixture
async def sender(
    runtime: Runtime, settings: Settings, broker: InProcessBroker
) -> AsyncIterator[SpeakerSender]:
    s = SpeakerSender(
        db=runtime.db, settings=fast(settings), connect=inprocess_connector(broker), client_id="t"
    )
    yield s
    await s.stop()


async def test_announce_writes_a_row_and_an_outbox_event_in_the_callers_unit_of_work(
    runtime: Runtime, station: tuple[int, str]
) -> None:
    station_id, _ = station
    async with runtime.db.unit_of_work() as session:
        message_id = await announce(
            session, station_id=station_id, text=" 微信支付 300.00 元，3号枪 "
        )
    (row,) = await rows(runtime.db)
    assert (row.id, row.station_id, row.speaker, row.text, row.status, row.attempts) == (
        message_id,
        station_id,
        1,
        "微信支付 300.00 元，3号枪",
        "pending",
        0,
    )
    async with runtime.db.read_only() as session:
        events = (await session.scalars(select(OutboxEvent))).all()
        session.expunge_all()
    assert [(e.topic, e.payload) for e in events] == [
        (speakers.CREATED, {"message_id": message_id, "station_id": station_id})
    ]


async def test_a_rolled_back_unit_of_work_leaves_no_announcement(
    runtime: Runtime, station: tuple[int, str]
) -> None:
    async def pay_and_fail() -> None:
        async with runtime.db.unit_of_work() as session:
            await announce(session, station_id=station[0], text="不会播报")
            raise RuntimeError("the payment failed")

    with pytest.raises(RuntimeError):
        await pay_and_fail()
    assert await rows(runtime.db) == []


@pytest.mark.parametrize("text", ["", "   ", "长" * 101])
async def test_announce_refuses_bad_text(
    runtime: Runtime, station: tuple[int, str], text: str
) -> None:
    async with runtime.db.unit_of_work() as session:
        with pytest.raises(Unprocessable) as refused:
            await announce(session, station_id=station[0], text=text)
    assert [e.field for e in refused.value.errors] == ["text"]


async def test_sent_played_once_and_marked_played(
    runtime: Runtime, station: tuple[int, str], settings: Settings, broker: InProcessBroker
) -> None:
    station_id, code = station
    slow_retry = fast(settings, speaker_retry_seconds=30.0, speaker_retry_max_seconds=30.0)
    sender = SpeakerSender(
        db=runtime.db, settings=slow_retry, connect=inprocess_connector(broker), client_id="t1"
    )
    device = SpeakerDevice(code, 2, inprocess_connector(broker))
    await device.start()
    await sender.start()
    async with runtime.db.unit_of_work() as session:
        message_id = await announce(session, station_id=station_id, text="现金 50.00 元", speaker=2)

    async def played() -> bool:
        return [r.status for r in await rows(runtime.db)] == ["played"]

    await wait_until(played)
    assert device.played == {message_id: 1}
    assert device.heard == ["现金 50.00 元"]
    (row,) = await rows(runtime.db)
    assert row.attempts == 1
    assert row.acked_at is not None
    await device.stop()
    await sender.stop()


async def test_resent_with_the_same_id_until_acknowledged_and_played_once(
    runtime: Runtime, station: tuple[int, str], sender: SpeakerSender, broker: InProcessBroker
) -> None:
    station_id, code = station
    seen: list[protocol.Announcement] = []
    # The device loses the first two publications and the ack of the third.
    device = SpeakerDevice(code, 1, inprocess_connector(broker))
    original = device.handle
    calls = 0

    def flaky(message: Message) -> protocol.SpeakerAck | None:
        nonlocal calls
        calls += 1
        decoded = protocol.decode(message.topic, message.payload).message
        assert isinstance(decoded, protocol.Announcement)
        seen.append(decoded)
        if calls <= 2:
            return None
        ack = original(message)
        return None if calls == 3 else ack

    device.handle = flaky  # type: ignore[method-assign]
    await device.start()
    await sender.start()
    async with runtime.db.unit_of_work() as session:
        message_id = await announce(session, station_id=station_id, text="支付宝 88.00 元，1号枪")

    async def played() -> bool:
        return [r.status for r in await rows(runtime.db)] == ["played"]

    await wait_until(played)
    assert device.played == {message_id: 1}
    assert device.repeats == 1  # the fourth publication was answered from memory
    assert [a.message_id for a in seen] == [message_id] * 4
    assert len({a.ts for a in seen}) == 4  # each resend has a new ts
    assert {(a.text, a.created_at, a.valid_until) for a in seen} == {
        (seen[0].text, seen[0].created_at, seen[0].valid_until)
    }
    (row,) = await rows(runtime.db)
    assert row.attempts == 4
    await device.stop()


async def test_gives_up_after_max_attempts_with_a_station_alert(
    runtime: Runtime, station: tuple[int, str], sender: SpeakerSender, broker: InProcessBroker
) -> None:
    station_id, code = station
    received: list[str] = []
    listener = broker.client("listener")
    await listener.connect()
    await listener.subscribe(protocol.build_topic(TopicKind.SPEAKER_SAY, code, 1))

    async def listen() -> None:
        async for m in listener.messages():
            received.append(m.topic)

    task = asyncio.create_task(listen())
    await sender.start()
    async with runtime.db.unit_of_work() as session:
        await announce(session, station_id=station_id, text="无人应答")

    async def failed() -> bool:
        return [r.status for r in await rows(runtime.db)] == ["failed"]

    await wait_until(failed)
    assert len(received) == 5  # speaker_max_attempts publications, then no more
    async with runtime.db.read_only() as session:
        alerts = (await session.scalars(select(StationAlert))).all()
        session.expunge_all()
    assert [(a.station_id, a.kind, a.code, a.occurrences) for a in alerts] == [
        (station_id, "speaker", "speaker_1_no_ack", 1)
    ]
    task.cancel()


async def test_backoff_doubles_and_is_capped(settings: Settings) -> None:
    s = SpeakerSender(
        db=None,  # type: ignore[arg-type]
        settings=fast(settings, speaker_retry_seconds=3.0, speaker_retry_max_seconds=30.0),
        connect=inprocess_connector(InProcessBroker()),
    )
    assert [s.backoff(n).total_seconds() for n in range(1, 7)] == [3, 6, 12, 24, 30, 30]


async def test_duplicate_and_unknown_acks_are_harmless(
    runtime: Runtime, station: tuple[int, str], sender: SpeakerSender, broker: InProcessBroker
) -> None:
    station_id, code = station
    device = SpeakerDevice(code, 1, inprocess_connector(broker))
    await device.start()
    await sender.start()
    async with runtime.db.unit_of_work() as session:
        message_id = await announce(session, station_id=station_id, text="重复应答")

    async def played() -> bool:
        return [r.status for r in await rows(runtime.db)] == ["played"]

    await wait_until(played)
    (before,) = await rows(runtime.db)
    ack_topic = protocol.build_topic(TopicKind.SPEAKER_ACK, code, 1)
    now = datetime.now(UTC)
    for status in ("played", "expired"):
        ack = protocol.SpeakerAck(message_id=message_id, status=status, ts=now)
        await broker.publish(ack_topic, protocol.encode(ack), retain=False)
    unknown = protocol.SpeakerAck(message_id="ann_unknown", status="played", ts=now)
    await broker.publish(ack_topic, protocol.encode(unknown), retain=False)
    await broker.publish(ack_topic, b"{not json", retain=False)
    await asyncio.sleep(0.2)
    (after,) = await rows(runtime.db)
    assert (after.status, after.acked_at, after.attempts) == (
        "played",
        before.acked_at,
        before.attempts,
    )
    await device.stop()


async def test_speaker_device_answers_late_and_bad_announcements_without_playing() -> None:
    broker = InProcessBroker()
    device = SpeakerDevice("KM0001", 1, inprocess_connector(broker), config=SpeakerConfig())
    now = datetime.now(UTC)
    late = protocol.Announcement(
        message_id="ann_late",
        station="KM0001",
        text="迟到",
        created_at=now - timedelta(minutes=5),
        ts=now,
        valid_until=now - timedelta(minutes=3),
    )
    topic = device.say_topic
    ack = device.handle(Message(topic, protocol.encode(late)))
    assert ack is not None
    assert ack.status == "expired"
    bad = device.handle(Message(topic, b'{"message_id": "ann_bad", "text": 1}'))
    assert bad is not None
    assert (bad.status, bad.reason) == ("rejected", "invalid")
    assert device.handle(Message(topic, b"garbage")) is None
    assert device.played == {}
