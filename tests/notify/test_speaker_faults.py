"""10,000 announcements through a real Mosquitto with lost and duplicated messages both ways:
every announcement must be heard exactly once (bench/README.md records a run)."""

from __future__ import annotations

import asyncio
import os
import random
import time

from sqlalchemy import func, select

from forecourt.config import Settings
from forecourt.notify.speaker import SpeakerSender, announce
from forecourt.pump.link.base import LinkClient, Will
from forecourt.pump.models import Announcement
from forecourt.pump.simulator.links import FaultyLink, mqtt_connector
from forecourt.pump.simulator.speaker import SpeakerConfig, SpeakerDevice
from forecourt.runtime import Runtime
from tests.fixtures.auth import insert_station
from tests.fixtures.mqtt import MosquittoProcess

N = int(os.environ.get("FORECOURT_SPEAKER_FAULT_N", "10000"))
RATE = 0.05  # 5 % of says lost, 5 % of acks lost, 5 % of each duplicated
BATCH = 1_000


async def test_every_announcement_is_heard_exactly_once_despite_loss_and_duplicates(
    runtime: Runtime, settings: Settings, mosquitto_broker: MosquittoProcess
) -> None:
    rng = random.Random(20260501)
    code = "KMFAULT1"
    station_id = await insert_station(runtime, code=code)
    fast = settings.model_copy(
        update={
            "speaker_retry_seconds": 0.5,
            "speaker_retry_max_seconds": 1.0,
            "speaker_max_attempts": 40,
            "speaker_valid_seconds": 120,
            "speaker_poll_seconds": 0.05,
        }
    )
    mqtt = mqtt_connector(mosquitto_broker.url)
    server_links: list[FaultyLink] = []
    device_links: list[FaultyLink] = []

    def server_connect(client_id: str, will: Will | None) -> LinkClient:
        # Says lost or sent twice on the way out of the server.
        link = FaultyLink(mqtt(client_id, will), rng=rng, drop_out=RATE, dup_out=RATE)
        server_links.append(link)
        return link

    def device_connect(client_id: str, will: Will | None) -> LinkClient:
        # Says delivered twice to the speaker, acks sent twice (drops: SpeakerConfig below).
        link = FaultyLink(
            mqtt(client_id, will),
            rng=rng,
            dup_in=RATE,
            dup_out=RATE,
            topic_filter=lambda topic: not topic.endswith("/online"),
        )
        device_links.append(link)
        return link

    device = SpeakerDevice(
        code,
        1,
        device_connect,
        config=SpeakerConfig(drop_say_rate=RATE, drop_ack_rate=RATE),
        rng=rng,
    )
    sender = SpeakerSender(
        db=runtime.db, settings=fast, connect=server_connect, client_id="fc-srv-fault-speaker"
    )
    ids: list[str] = []
    for start in range(0, N, BATCH):
        async with runtime.db.unit_of_work() as session:
            for i in range(start, min(start + BATCH, N)):
                ids.append(
                    await announce(
                        session,
                        station_id=station_id,
                        text=f"微信支付 {i / 100:.2f} 元，{i % 12 + 1}号枪",
                    )
                )
    await device.start()
    started = time.perf_counter()
    await sender.start()

    async def open_count() -> int:
        async with runtime.db.read_only() as session:
            stmt = select(func.count()).where(Announcement.status.in_(("pending", "sent")))
            return int((await session.scalar(stmt)) or 0)

    try:
        async with asyncio.timeout(90):
            while True:
                if await open_count() == 0:
                    break
                await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        await sender.stop()
        await device.stop()

    async with runtime.db.read_only() as session:
        statuses = dict(
            (
                await session.execute(
                    select(Announcement.status, func.count()).group_by(Announcement.status)
                )
            ).all()
        )
        attempts = int(await session.scalar(select(func.sum(Announcement.attempts))) or 0)
    lost = sum(1 for i in ids if device.played[i] == 0)
    duplicates = sum(c - 1 for c in device.played.values() if c > 1)
    faults = {
        "says_dropped_at_server": sum(link.dropped_out for link in server_links),
        "says_duplicated_at_server": sum(link.duplicated_out for link in server_links),
        "says_duplicated_on_delivery": sum(link.duplicated_in for link in device_links),
        "says_dropped_at_speaker": device.dropped_says,
        "acks_dropped": device.dropped_acks,
        "acks_duplicated": sum(link.duplicated_out for link in device_links),
    }
    error_rate = (lost + duplicates) / N
    print(
        f"\nspeaker faults: {N} announcements in {elapsed:.1f} s; publications {attempts} "
        f"({attempts / N:.3f} per announcement); statuses {statuses}; device received "
        f"{device.received}, answered {device.repeats} repeats from memory; injected {faults}; "
        f"lost {lost}, played twice {duplicates} -> {error_rate:.4%}"
    )
    assert statuses == {"played": N}
    assert error_rate < 0.001
    assert lost == 0
    assert duplicates == 0
    # The faults really happened (about 5 % each): the test would notice a retry bug.
    assert all(count > N * RATE / 2 for count in faults.values()), faults
    assert len(device.played) == N
