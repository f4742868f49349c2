"""The pump link against a real Mosquitto: persistent sessions, retained state, last will."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.pump import service
from forecourt.pump.commands import PumpOffline
from forecourt.pump.domain import Preset
from forecourt.pump.link.mqtt import MqttLinkClient, make_client
from forecourt.pump.models import PumpSale, StationAlert
from forecourt.pump.protocol import TopicKind
from forecourt.runtime import Runtime
from tests import conftest
from tests.fixtures.mqtt import MosquittoProcess
from tests.pump.helpers import (
    ScriptedGateway,
    eventually,
    fp_row,
    make_pump_station,
    online_will,
    sale_count,
    sale_report,
)


@pytest.fixture
def settings(db: Database, mosquitto_broker: MosquittoProcess) -> Settings:
    """Settings pointing at this test's own Mosquitto."""
    return conftest.test_settings(
        db.url, mqtt_url=mosquitto_broker.url, mqtt_client_prefix=f"t{uuid.uuid4().hex[:8]}"
    )


@pytest.fixture
async def tasks(runtime: Runtime) -> AsyncIterator[Runtime]:
    """The outbox dispatcher running; the pump link is started by each test."""
    await runtime.tasks.start(dispatcher=True, scheduler=False)
    try:
        yield runtime
    finally:
        await runtime.tasks.stop()
        await runtime.pumps.stop()


async def start_link(runtime: Runtime) -> None:
    """Start the server link and wait until it is subscribed."""
    runtime.pumps.start()
    await asyncio.wait_for(runtime.pumps.connected.wait(), timeout=10)


def gateway_on(broker: MosquittoProcess, code: str) -> ScriptedGateway:
    """A gateway with a persistent session and a last will without delay (fast tests)."""
    client = make_client(broker.url, f"fc-gw-{code}", will=online_will(code), will_delay_seconds=0)
    return ScriptedGateway(client=client, code=code)


async def _stored(runtime: Runtime, station_id: int, n: int) -> None:
    async def enough() -> bool:
        return await sale_count(runtime, station_id) == n

    await eventually(enough, what=f"{n} sales stored")


async def test_retained_state_is_picked_up_when_the_server_starts(
    tasks: Runtime, mosquitto_broker: MosquittoProcess
) -> None:
    station = await make_pump_station(tasks)
    gateway = gateway_on(mosquitto_broker, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    await gateway.state(2, 4, nozzle=3)
    await start_link(tasks)

    async def synced() -> bool:
        one, two = await fp_row(tasks, station.id, 1), await fp_row(tasks, station.id, 2)
        return (one.state, two.state, two.nozzle_out) == (3, 4, 3)

    await eventually(synced, what="retained states applied")
    await gateway.disconnect()


async def test_authorise_fuel_and_sale_over_mosquitto(
    tasks: Runtime, mosquitto_broker: MosquittoProcess
) -> None:
    station = await make_pump_station(tasks)
    await start_link(tasks)
    gateway = gateway_on(mosquitto_broker, station.code)
    await gateway.connect()
    await gateway.state(2, 3, last_seq=0)

    async def idle() -> bool:
        return (await fp_row(tasks, station.id, 2)).state == 3

    await eventually(idle, what="fp 2 idle")
    async with tasks.db.unit_of_work() as session:
        await service.authorise(
            session,
            station_id=station.id,
            nozzle_number=3,
            preset=Preset.volume(20_000),
            order_id="ord_1",
            ttl_seconds=120,
        )

    async def authorised() -> bool:
        return (await fp_row(tasks, station.id, 2)).state == 5

    await eventually(authorised, what="authorised by ack")
    await gateway.state(2, 6, nozzle=3)
    await gateway.progress(
        2, nozzle=3, grade="95", volume_ml=20_000, unit_price_fen=832, auth_ref="ord_1"
    )
    await gateway.state(2, 3, last_seq=1)
    report = sale_report(
        seq=1, nozzle=3, grade="95", volume_ml=20_000, unit_price_fen=832, auth_ref="ord_1"
    )
    for _ in range(4):  # the first publication and three QoS 1 style repeats
        await gateway.sale(2, report)

    async def four_acks() -> bool:
        return len(gateway.sale_acks) == 4

    await eventually(four_acks, what="four sale acks")
    assert [a["status"] for a in gateway.sale_acks] == ["accepted"] + ["duplicate"] * 3
    assert await sale_count(tasks, station.id) == 1
    assert [c["type"] for c in gateway.commands] == ["authorise"]
    await gateway.disconnect()


async def test_broker_restart_during_fuelling_loses_nothing(
    tasks: Runtime, mosquitto_broker: MosquittoProcess
) -> None:
    station = await make_pump_station(tasks)
    await start_link(tasks)
    gateway = gateway_on(mosquitto_broker, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    await gateway.state(1, 4, nozzle=1)
    await gateway.state(1, 5, nozzle=1)
    await gateway.state(1, 8, nozzle=1)
    await gateway.progress(1, nozzle=1, grade="92", volume_ml=5_000, unit_price_fen=776)

    async def fuelling() -> bool:
        return (await fp_row(tasks, station.id, 1)).state == 8

    await eventually(fuelling, what="fuelling")
    mosquitto_broker.restart()
    await gateway.reconnect()
    await gateway.state(1, 3, last_seq=1)
    first = sale_report(seq=1, nozzle=1, grade="92", volume_ml=30_000, unit_price_fen=776)
    await gateway.sale(1, first)
    await _stored(tasks, station.id, 1)  # the server link reconnected by itself

    # The server is away: the broker queues for its persistent session, across a restart.
    await tasks.pumps.stop()
    second = sale_report(
        seq=2,
        nozzle=1,
        grade="92",
        volume_ml=10_000,
        unit_price_fen=776,
        totalizer_before_ml=first.totalizer_volume_ml,
        totalizer_before_fen=first.totalizer_amount_fen,
    )
    await gateway.state(1, 3, last_seq=2)
    await gateway.sale(1, second)
    mosquitto_broker.restart()
    await start_link(tasks)
    await _stored(tasks, station.id, 2)
    assert (await fp_row(tasks, station.id, 1)).last_seq == 2
    await gateway.disconnect()


async def test_last_will_takes_the_station_offline_and_buffered_sales_come_back(
    tasks: Runtime, mosquitto_broker: MosquittoProcess
) -> None:
    station = await make_pump_station(tasks)
    await start_link(tasks)
    gateway = gateway_on(mosquitto_broker, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    first = sale_report(seq=1, nozzle=1, grade="92", volume_ml=10_000, unit_price_fen=776)
    await gateway.sale(1, first)
    await _stored(tasks, station.id, 1)

    assert isinstance(gateway.client, MqttLinkClient)
    gateway.client.drop()  # crash: no DISCONNECT, the broker publishes the will

    async def offline() -> bool:
        return (await fp_row(tasks, station.id, 1)).state == 10

    await eventually(offline, what="fp offline after the will")
    async with tasks.db.unit_of_work() as session:
        with pytest.raises(PumpOffline):
            await service.authorise(
                session,
                station_id=station.id,
                nozzle_number=1,
                preset=None,
                order_id="ord_x",
                ttl_seconds=60,
            )
    # Meanwhile the pump made sales 2 and 3; the gateway comes back and reports TTC 3.
    sales = [first]
    for seq in (2, 3):
        prev = sales[-1]
        sales.append(
            sale_report(
                seq=seq,
                nozzle=1,
                grade="92",
                volume_ml=5_000 * seq,
                unit_price_fen=776,
                totalizer_before_ml=prev.totalizer_volume_ml,
                totalizer_before_fen=prev.totalizer_amount_fen,
            )
        )
    await gateway.reconnect()
    await gateway.state(1, 3, last_seq=3)

    async def reread_asked() -> dict[str, object] | None:
        found = [c for c in gateway.commands if c["type"] == "reread_sales"]
        return found[0] if found else None

    reread = await eventually(reread_asked, what="reread_sales command")
    assert (reread["fp"], reread["from_seq"], reread["to_seq"]) == (1, 2, 3)
    for report in sales[1:]:
        await gateway.sale(1, report.model_copy(update={"reread": True}))
    await _stored(tasks, station.id, 3)
    async with tasks.db.read_only() as session:
        alerts = (
            await session.scalars(select(StationAlert).where(StationAlert.station_id == station.id))
        ).all()
        states = [(a.kind, a.resolved_at is not None) for a in alerts]
        seqs = (
            await session.scalars(
                select(PumpSale.seq).where(PumpSale.station_id == station.id).order_by(PumpSale.seq)
            )
        ).all()
    assert states == [("gateway_offline", True)]
    assert list(seqs) == [1, 2, 3]
    await gateway.disconnect()


async def test_garbage_on_the_wire_is_refused_and_the_link_keeps_running(
    tasks: Runtime, mosquitto_broker: MosquittoProcess
) -> None:
    station = await make_pump_station(tasks)
    await start_link(tasks)
    gateway = gateway_on(mosquitto_broker, station.code)
    await gateway.connect()
    await gateway.raw(TopicKind.FP_STATE, 1, b"\xff\xfe not json")
    await gateway.raw(TopicKind.FP_PROGRESS, 1, b"{}")
    await gateway.state(1, 3, last_seq=0)

    async def idle() -> bool:
        return (await fp_row(tasks, station.id, 1)).state == 3

    await eventually(idle, what="valid state after garbage")
    async with tasks.db.read_only() as session:
        codes = (
            await session.scalars(
                select(StationAlert.code)
                .where(StationAlert.station_id == station.id)
                .order_by(StationAlert.code)
            )
        ).all()
    assert list(codes) == ["invalid_payload", "malformed_json"]
    await gateway.disconnect()
