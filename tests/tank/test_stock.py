"""Book stock, gauge readings and deliveries, variance alerts, availability (service level)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from forecourt.kit import clock
from forecourt.pump.domain.errors import GradeMismatch, InvalidInput
from forecourt.pump.models import StationAlert, TankDelivery, TankReading
from forecourt.runtime import Runtime
from forecourt.tank import repository, service
from tests.fixtures.tanks import Site, add_nozzle, add_sale, add_tank, delivery, reading


async def test_book_stock_is_opening_plus_deliveries_minus_sales(
    runtime: Runtime, site: Site
) -> None:
    now = clock.now()
    opening = now - timedelta(hours=10)
    async with runtime.db.unit_of_work() as s:
        t1 = await add_tank(s, station_id=site.a, number=1, book_ml=10_000_000, book_since=opening)
        t2 = await add_tank(s, station_id=site.a, number=2, grade="95", book_ml=5_000_000)
        n1 = await add_nozzle(s, station_id=site.a, number=1, grade="92", tank_id=t1.id)
        n2 = await add_nozzle(s, station_id=site.a, number=2, grade="92", tank_id=t1.id)
        n3 = await add_nozzle(s, station_id=site.a, number=3, grade="95", tank_id=t2.id)
        # Counted: after the opening, through tank 1's nozzles, whatever the sale status.
        await add_sale(s, nozzle=n1, volume_ml=35_500, ended_at=now - timedelta(hours=9))
        await add_sale(s, nozzle=n2, volume_ml=20_001, ended_at=now - timedelta(hours=5))
        await add_sale(
            s, nozzle=n1, volume_ml=1_234, ended_at=now - timedelta(hours=1), status="payable"
        )
        # Not counted: before (or at) the opening, or from another tank.
        await add_sale(s, nozzle=n1, volume_ml=99_999, ended_at=opening)
        await add_sale(s, nozzle=n2, volume_ml=77_777, ended_at=opening - timedelta(hours=1))
        await add_sale(s, nozzle=n3, volume_ml=40_000, ended_at=now - timedelta(hours=2))
        t1_id = t1.id
    async with runtime.db.unit_of_work() as s:
        msgs = await service.record_delivery(
            s,
            station_id=site.a,
            tank_number=1,
            delivery=delivery(
                delivery_id="D-1", volume_ml=8_000_000, ended_at=now - timedelta(hours=3)
            ),
        )
    assert len(msgs) == 1
    expected = 10_000_000 - 35_500 - 20_001 - 1_234 + 8_000_000
    assert msgs[0]["book_ml"] == expected
    assert msgs[0]["type"] == "tank"
    assert msgs[0]["tank"] == 1
    assert msgs[0]["grade"] == "92"
    async with runtime.db.read_only() as s:
        tanks = await repository.tanks_of(s, station_ids=[site.a])
        book = await service.book_stock(s, tanks)
        assert book[t1_id] == expected
        assert book[tanks[1].id] == 5_000_000 - 40_000
        # At a moment in the past only what ended by then counts.
        then = await service.book_stock(s, tanks, at=now - timedelta(hours=2))
        assert then[t1_id] == 10_000_000 - 35_500 - 20_001 + 8_000_000


async def test_variance_alert_above_threshold_only(runtime: Runtime, site: Site) -> None:
    async with runtime.db.unit_of_work() as s:
        await add_tank(s, station_id=site.a, book_ml=10_000_000, variance_alert_ml=200_000)

    async def read(seq: int, volume: int) -> None:
        async with runtime.db.unit_of_work() as s:
            await service.record_reading(
                s,
                station_id=site.a,
                tank_number=1,
                reading=reading(event_seq=seq, volume_ml=volume),
            )

    async def alerts() -> list[tuple[str, int, bool, str]]:
        async with runtime.db.read_only() as s:
            rows = await s.scalars(select(StationAlert).where(StationAlert.kind == "tank_variance"))
            return [(a.code, a.occurrences, a.resolved_at is not None, a.detail) for a in rows]

    await read(1, 10_000_000 - 200_000)  # exactly at the threshold: no alert
    await read(2, 10_000_000 + 200_000)
    assert await alerts() == []
    await read(3, 10_000_000 - 200_001)  # a loss just beyond it
    found = await alerts()
    assert [a[:3] for a in found] == [("tank_1", 1, False)]
    assert "variance -200001 ml (loss or leak)" in found[0][3]
    await read(4, 10_000_000 - 300_000)
    assert [a[:3] for a in await alerts()] == [("tank_1", 2, False)]
    await read(5, 10_000_000)  # back within: resolved
    assert [a[:3] for a in await alerts()] == [("tank_1", 2, True)]
    sample = service.VARIANCE_ML.labels(station_id=str(site.a), tank="1")
    assert sample._value.get() == 0


async def test_duplicate_and_late_readings_change_nothing(runtime: Runtime, site: Site) -> None:
    async with runtime.db.unit_of_work() as s:
        await add_tank(s, station_id=site.a)
    first = reading(event_seq=100, volume_ml=9_990_000)
    async with runtime.db.unit_of_work() as s:
        assert len(await service.record_reading(s, station_id=site.a, tank_number=1, reading=first))
    for again in (first, reading(event_seq=99, volume_ml=1_000_000)):
        async with runtime.db.unit_of_work() as s:
            assert (
                await service.record_reading(s, station_id=site.a, tank_number=1, reading=again)
                == []
            )
    async with runtime.db.read_only() as s:
        assert await s.scalar(select(func.count()).select_from(TankReading)) == 1
        tank = (await repository.tanks_of(s, station_ids=[site.a]))[0]
        assert tank.measured_ml == 9_990_000
        assert tank.level_mm == 1523
        assert tank.water_mm == 12
        assert tank.temperature_dc == 186


async def test_bad_gauge_input_is_refused_with_stable_codes(runtime: Runtime, site: Site) -> None:
    async with runtime.db.unit_of_work() as s:
        await add_tank(s, station_id=site.a, capacity_ml=30_000_000)
    cases = [
        (7, reading(event_seq=1, volume_ml=1), "unknown_tank"),
        (1, reading(event_seq=1, volume_ml=30_000_001), "invalid"),
        (1, reading(event_seq=1, volume_ml=1, grade="95"), "grade_mismatch"),
    ]
    for number, bad, code in cases:
        with pytest.raises(InvalidInput) as err:
            async with runtime.db.unit_of_work() as s:
                await service.record_reading(s, station_id=site.a, tank_number=number, reading=bad)
        assert err.value.code == code
    with pytest.raises(GradeMismatch):
        async with runtime.db.unit_of_work() as s:
            await service.record_delivery(
                s,
                station_id=site.a,
                tank_number=1,
                delivery=delivery(delivery_id="X", volume_ml=5, grade="0"),
            )
    async with runtime.db.read_only() as s:
        assert await s.scalar(select(func.count()).select_from(TankReading)) == 0


async def test_gauge_delivery_applies_once(runtime: Runtime, site: Site) -> None:
    async with runtime.db.unit_of_work() as s:
        await add_tank(s, station_id=site.a, number=1)
        await add_tank(s, station_id=site.a, number=2)
    d = delivery(delivery_id="KM0001-T1-20260501-01", volume_ml=20_010_000)
    results = []
    for _ in range(3):
        async with runtime.db.unit_of_work() as s:
            results.append(
                await service.record_delivery(s, station_id=site.a, tank_number=1, delivery=d)
            )
    assert [len(r) for r in results] == [1, 0, 0]
    assert results[0][0]["book_ml"] == 10_000_000 + 20_010_000
    with pytest.raises(service.InvalidTankValue):
        async with runtime.db.unit_of_work() as s:
            await service.record_delivery(s, station_id=site.a, tank_number=2, delivery=d)
    async with runtime.db.read_only() as s:
        assert await s.scalar(select(func.count()).select_from(TankDelivery)) == 1


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ((3_000_001,), "in_stock"),
        ((3_000_000,), "low"),
        ((500_001,), "low"),
        ((500_000,), "out"),
        ((0,), "out"),
        ((2_000_000, 2_000_000), "low"),  # 4,000,000 vs low 6,000,000 over two tanks
        ((5_000_000, 1_000_001), "in_stock"),  # 6,000,001 > 6,000,000
        ((500_000, 500_000), "out"),  # 1,000,000 = the summed out_ml
    ],
)
async def test_availability_thresholds(
    runtime: Runtime, site: Site, volumes: tuple[int, ...], expected: str
) -> None:
    async with runtime.db.unit_of_work() as s:
        for i, _ in enumerate(volumes, start=1):
            await add_tank(s, station_id=site.a, number=i, low_ml=3_000_000, out_ml=500_000)
        await add_tank(s, station_id=site.a, number=9, grade="95", book_ml=0, active=False)
    for i, volume in enumerate(volumes, start=1):
        async with runtime.db.unit_of_work() as s:
            await service.record_reading(
                s, station_id=site.a, tank_number=i, reading=reading(event_seq=i, volume_ml=volume)
            )
    async with runtime.db.read_only() as s:
        found = await service.availability(s, station_ids=[site.a, site.b])
    assert found == {(site.a, "92"): expected, (site.a, "95"): "out"}


async def test_availability_falls_back_to_book_stock(runtime: Runtime, site: Site) -> None:
    async with runtime.db.unit_of_work() as s:
        tank = await add_tank(s, station_id=site.a, book_ml=3_100_000, low_ml=3_000_000)
        nozzle = await add_nozzle(s, station_id=site.a, number=1, grade="92", tank_id=tank.id)
    async with runtime.db.read_only() as s:
        assert await service.availability(s, station_ids=[site.a]) == {(site.a, "92"): "in_stock"}
    async with runtime.db.unit_of_work() as s:
        await add_sale(s, nozzle=nozzle, volume_ml=100_000, ended_at=clock.now())
    async with runtime.db.read_only() as s:
        assert await service.availability(s, station_ids=[site.a]) == {(site.a, "92"): "low"}
