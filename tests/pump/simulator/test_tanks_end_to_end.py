"""The simulated tank gauge against the server (equipment, link, routes), SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import timedelta

import httpx
from sqlalchemy import select

from forecourt.kit import clock
from forecourt.pump import alerts
from forecourt.pump.models import PumpSale, StationAlert, Tank, TankDelivery, TankReading
from forecourt.pump.simulator import (
    GatewayConfig,
    GatewaySim,
    PumpConfig,
    SimClock,
    TankConfig,
    TrafficConfig,
    TrafficDriver,
)
from forecourt.pump.simulator.equipment import load_stations
from forecourt.pump.simulator.links import inprocess_connector
from forecourt.runtime import Runtime
from forecourt.tank.service import VARIANCE_KIND
from tests.fixtures.factories import make_staff_token
from tests.pump.helpers import eventually, make_pump_station

ADMIN = "/api/v1/admin/stations/{sid}/tanks"
# Gauge noise (0.05 % of at most 25.5 m³, twice in a delivery) and minutes of slow loss.
TOLERANCE_ML = 40_000


async def _rows(
    runtime: Runtime, station_id: int
) -> tuple[list[TankReading], list[TankDelivery], dict[int, int]]:
    async with runtime.db.read_only() as session:
        tanks = {
            t.id: t.number
            for t in (await session.scalars(select(Tank).where(Tank.station_id == station_id)))
        }
        readings = list(
            (
                await session.scalars(
                    select(TankReading)
                    .where(TankReading.tank_id.in_(tanks))
                    .order_by(TankReading.id)
                )
            ).all()
        )
        deliveries = list(
            (
                await session.scalars(select(TankDelivery).where(TankDelivery.tank_id.in_(tanks)))
            ).all()
        )
        session.expunge_all()
    return readings, deliveries, tanks


async def test_simulated_gauge_readings_and_delivery_reach_the_tank_pages(
    link: Runtime, client: httpx.AsyncClient
) -> None:
    station = await make_pump_station(link)
    async with link.db.unit_of_work() as session:
        low = (
            await session.scalars(
                select(Tank).where(Tank.station_id == station.id, Tank.number == 1)
            )
        ).one()
        low.book_ml = 5_400_000  # 18 % of 30 m³: the gauge orders a truck at once
    async with link.db.read_only() as session:
        (spec,) = await load_stations(session, [station.code])
    assert [(t.number, t.grade, t.capacity_ml, t.volume_ml, t.nozzles) for t in spec.tanks] == [
        (1, "92", 30_000_000, 5_400_000, (1,)),
        (2, "95", 30_000_000, 20_000_000, (2, 3)),
    ]
    assert link.broker is not None
    config = GatewayConfig(
        pump=PumpConfig(progress_seconds=5.0),
        tank_reading_seconds=30.0,
        tank=TankConfig(
            delivery_after_seconds=60.0, delivery_seconds=120.0, delivery_resend_seconds=30.0
        ),
    )
    gateway = GatewaySim(
        spec,
        inprocess_connector(link.broker),
        clock=SimClock(50.0),
        config=config,
        rng=random.Random(7),
    )
    traffic = TrafficDriver(
        gateway, config=TrafficConfig(mean_arrival_seconds=8.0), rng=random.Random(8)
    )
    await gateway.start()
    driving = asyncio.create_task(traffic.run(), name=f"sim-{station.code}-traffic")
    try:

        async def delivered_and_read_after() -> bool:
            readings, deliveries, tanks = await _rows(link, station.id)
            if len(deliveries) != 1 or gateway.tanks.unacked():
                return False
            after = [
                r
                for r in readings
                if tanks[r.tank_id] == 1 and r.measured_at > deliveries[0].ended_at
            ]
            return len(after) >= 2 and await _sold(link, station.id) >= 2

        await eventually(
            delivered_and_read_after,
            within=60,
            what="a stored, acknowledged delivery, readings after it and some sales",
        )
    finally:
        driving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driving
        await gateway.stop()

    readings, deliveries, tanks = await _rows(link, station.id)
    (delivery,) = deliveries
    assert (tanks[delivery.tank_id], delivery.source) == (1, "gauge")
    assert delivery.delivery_ref.startswith(f"{station.code}-T1-")
    assert delivery.started_at is not None
    assert delivery.started_at <= delivery.ended_at
    # 85 % of 30 m³ less about 5.4 m³, in whole cubic metres, as the gauge measured it.
    assert abs(delivery.volume_ml - 20_000_000) <= TOLERANCE_ML
    acks = [a.status for a in gateway.tanks.tanks[1].acks]
    assert acks[0] == "accepted"
    assert set(acks[1:]) <= {"duplicate"}
    assert {a.delivery_id for a in gateway.tanks.tanks[1].acks} == {delivery.delivery_ref}

    assert {tanks[r.tank_id] for r in readings} == {1, 2}
    seqs = [r.event_seq for r in readings]
    assert None not in seqs
    assert len(set(seqs)) == len(seqs)
    for reading in readings:
        assert abs(reading.volume_ml - reading.book_ml) <= TOLERANCE_ML, reading.__dict__
        assert reading.temperature_dc is not None
        assert 180 <= reading.temperature_dc <= 250
        assert reading.water_mm is not None
        assert 0 <= reading.water_mm <= 9
    tank_1 = [r for r in readings if tanks[r.tank_id] == 1]
    assert tank_1[0].volume_ml < 6_000_000 < 24_000_000 < tank_1[-1].volume_ml

    async with link.db.read_only() as session:
        kinds = (
            await session.scalars(
                select(StationAlert.kind).where(StationAlert.station_id == station.id)
            )
        ).all()
    assert alerts.BAD_INPUT not in kinds  # no message was refused
    assert VARIANCE_KIND not in kinds

    hq = await make_staff_token(link, role="hq_admin")
    listed = await client.get(ADMIN.format(sid=station.id), headers=hq)
    assert listed.status_code == 200, listed.text
    by_number = {t["number"]: t for t in listed.json()}
    for number in (1, 2):
        shown = by_number[number]
        assert shown["measured_ml"] is not None
        assert shown["level_mm"] is not None
        assert abs(shown["variance_ml"]) <= TOLERANCE_ML
        assert shown["variance_alert"] is False
    chart = await client.get(ADMIN.format(sid=station.id) + "/1/readings", headers=hq)
    assert chart.status_code == 200, chart.text
    points = chart.json()
    assert [p["event_seq"] for p in points] == [r.event_seq for r in tank_1]
    assert all(abs(p["variance_ml"]) <= TOLERANCE_ML for p in points)
    history = await client.get(ADMIN.format(sid=station.id) + "/1/deliveries", headers=hq)
    assert [d["ref"] for d in history.json()] == [delivery.delivery_ref]


async def test_tanks_start_from_the_latest_reading_moved_on_by_book_flows(
    runtime: Runtime,
) -> None:
    station = await make_pump_station(runtime)
    now = clock.now()
    async with runtime.db.unit_of_work() as session:
        tanks = {
            t.number: t
            for t in await session.scalars(select(Tank).where(Tank.station_id == station.id))
        }
        read = tanks[2]
        read.measured_ml = 19_950_000  # 50 L below its book stock when read an hour ago
        read.measured_at = now - timedelta(hours=1)
        for ref, hours, volume in (("before", 2, 1_000_000), ("after", 0.5, 3_000_000)):
            session.add(
                TankDelivery(
                    tank_id=read.id,
                    delivery_ref=f"staff/{ref}",
                    volume_ml=volume,
                    ended_at=now - timedelta(hours=hours),
                    source="staff",
                    created_at=now,
                )
            )
        session.add(
            Tank(
                station_id=station.id,
                number=3,
                grade_code="95",
                capacity_ml=10_000_000,
                book_ml=5_000_000,
                book_since=now - timedelta(days=1),
                active=False,
            )
        )
    async with runtime.db.read_only() as session:
        (spec,) = await load_stations(session, [station.code])
    # Tank 1 was never read: its book stock. Tank 2: the reading plus the later delivery.
    # The inactive tank 3 has no gauge.
    assert [(t.number, t.volume_ml, t.nozzles) for t in spec.tanks] == [
        (1, 20_000_000, (1,)),
        (2, 19_950_000 + 3_000_000, (2, 3)),
    ]


async def _sold(runtime: Runtime, station_id: int) -> int:
    async with runtime.db.read_only() as session:
        stmt = select(PumpSale.id).where(PumpSale.station_id == station_id)
        return len((await session.scalars(stmt)).all())
