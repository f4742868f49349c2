"""Tank availability in nearby answers comes from the in-process snapshot and follows the tables."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update

from forecourt.kit import clock
from forecourt.pump.models import Tank
from forecourt.runtime import Runtime
from forecourt.search import service
from forecourt.search.schemas import NearbyQuery
from forecourt.search.service import NearbySearch
from forecourt.station.models import Station
from forecourt.tank import service as tank_service
from tests.fixtures.factories import make_price
from tests.fixtures.tanks import Site, add_nozzle, add_sale, add_tank, reading

QUERY = NearbyQuery(lat=25.04, lng=102.71, coord="wgs84", grade="92")


class Statements:
    """Counts the statements the engine runs."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: Any) -> None:
        self.count += 1


@pytest.fixture
def statements(runtime: Runtime) -> Iterator[Statements]:
    """Statements run while the test runs."""
    counter = Statements()
    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine, "before_cursor_execute", counter)


async def _priced(runtime: Runtime, site: Site) -> None:
    async with runtime.db.unit_of_work() as s:
        for sid in (site.a, site.b):
            station = await s.get(Station, sid)
            assert station is not None
            await make_price(s, station=station, grade="92", price_fen=790)


async def _found(search: NearbySearch, runtime: Runtime) -> dict[int, str]:
    page = await service.nearby(search=search, db=runtime.db, query=QUERY)
    return {item["id"]: item["availability"] for item in page["items"]}


async def _truth(runtime: Runtime, site: Site) -> dict[int, str]:
    async with runtime.db.read_only() as s:
        found = await tank_service.availability(s, station_ids=[site.a, site.b])
    return {sid: found.get((sid, "92"), "unknown") for sid in (site.a, site.b)}


async def test_availability_follows_readings_sales_and_tank_changes(
    runtime: Runtime, site: Site
) -> None:
    await _priced(runtime, site)
    async with runtime.db.unit_of_work() as s:
        await add_tank(s, station_id=site.a, number=1, book_ml=10_000_000)
    search = NearbySearch(backend="memory", refresh_seconds=0.0, stock_reread_seconds=3600.0)
    assert await _found(search, runtime) == {site.a: "in_stock", site.b: "unknown"}

    async with runtime.db.unit_of_work() as s:  # a gauge reading (only station A re-read)
        await tank_service.record_reading(
            s, station_id=site.a, tank_number=1, reading=reading(event_seq=1, volume_ml=2_500_000)
        )
    assert await _found(search, runtime) == {site.a: "low", site.b: "unknown"}

    async with runtime.db.unit_of_work() as s:  # a new tank: everything re-read
        tank = await add_tank(s, station_id=site.b, number=1, book_ml=3_600_000)
        nozzle = await add_nozzle(s, station_id=site.b, number=1, grade="92", tank_id=tank.id)
    assert await _found(search, runtime) == {site.a: "low", site.b: "in_stock"}

    async with runtime.db.unit_of_work() as s:  # a sale from the unread tank (book stock)
        await add_sale(s, nozzle=nozzle, volume_ml=1_000_000, ended_at=clock.now())
    assert await _found(search, runtime) == {site.a: "low", site.b: "low"}

    async with runtime.db.unit_of_work() as s:  # thresholds changed by staff
        await s.execute(update(Tank).where(Tank.station_id == site.b).values(low_ml=1_000_000))
    assert await _found(search, runtime) == await _truth(runtime, site)
    assert await _found(search, runtime) == {site.a: "low", site.b: "in_stock"}

    async with runtime.db.unit_of_work() as s:  # out of service
        await s.execute(update(Tank).where(Tank.station_id == site.a).values(active=False))
    assert await _found(search, runtime) == {site.a: "out", site.b: "in_stock"}
    assert await _found(search, runtime) == await _truth(runtime, site)


async def test_a_request_does_no_database_io_and_refreshes_in_the_background(
    runtime: Runtime, site: Site, statements: Statements
) -> None:
    await _priced(runtime, site)
    async with runtime.db.unit_of_work() as s:
        await add_tank(s, station_id=site.a, number=1, book_ml=10_000_000)
    search = NearbySearch(backend="memory", refresh_seconds=3600.0)
    assert await _found(search, runtime) == {site.a: "in_stock", site.b: "unknown"}
    before = statements.count
    for _ in range(5):
        await _found(search, runtime)
    assert statements.count == before  # answered from memory, availability included

    async with runtime.db.unit_of_work() as s:
        await tank_service.record_reading(
            s, station_id=site.a, tank_number=1, reading=reading(event_seq=1, volume_ml=400_000)
        )
    search.refresh_seconds = 0.01
    await asyncio.sleep(0.02)
    before = statements.count
    assert await _found(search, runtime) == {site.a: "in_stock", site.b: "unknown"}
    assert statements.count == before  # the due check runs after the answer, not before it
    background = search._background
    assert background is not None
    await background
    assert statements.count > before
    search.refresh_seconds = 3600.0
    assert await _found(search, runtime) == {site.a: "out", site.b: "unknown"}
    await search.close()
