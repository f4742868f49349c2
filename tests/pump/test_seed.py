"""The demo seed gives every demo station a plausible forecourt, once."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from forecourt.db import Database
from forecourt.pump.models import Dispenser, FuellingPointRow, Nozzle, Tank
from forecourt.seed.demo import seed_stations
from forecourt.seed.kunming import BRAND_PRICES, STATIONS
from forecourt.seed.pumps import seed_pumps
from forecourt.station.models import Station


async def test_every_demo_station_gets_dispensers_nozzles_and_tanks(db: Database) -> None:
    await seed_stations(db)
    assert await seed_pumps(db) == len(STATIONS)
    assert await seed_pumps(db) == 0
    async with db.read_only() as session:
        stations = {s.id: s for s in (await session.scalars(select(Station))).all()}
        dispensers = Counter((await session.scalars(select(Dispenser.station_id))).all())
        nozzles = (await session.scalars(select(Nozzle))).all()
        tanks = {t.id: t for t in (await session.scalars(select(Tank))).all()}
        fps = (await session.scalars(select(FuellingPointRow))).all()
        total_nozzles = await session.scalar(select(func.count()).select_from(Nozzle))
        assert total_nozzles == len(nozzles)
        by_station: dict[int, list[Nozzle]] = {}
        for nozzle in nozzles:
            by_station.setdefault(nozzle.station_id, []).append(nozzle)
        for station_id, station in stations.items():
            mine = by_station[station_id]
            assert 2 <= dispensers[station_id] <= 6, station.code
            assert 4 <= len(mine) <= 12, station.code
            assert sorted(n.number for n in mine) == list(range(1, len(mine) + 1))
            station_tanks = [t for t in tanks.values() if t.station_id == station_id]
            assert sorted(t.grade_code for t in station_tanks) == sorted(
                BRAND_PRICES[station.brand]
            )
            for tank in station_tanks:
                assert 20_000_000 <= tank.capacity_ml <= 30_000_000
                assert tank.out_ml < tank.low_ml < tank.book_ml < tank.capacity_ml
                assert tank.measured_ml is not None
                assert abs(tank.measured_ml - tank.book_ml) <= 60_000
            for nozzle in mine:
                assert nozzle.tank_id is not None
                assert tanks[nozzle.tank_id].grade_code == nozzle.grade_code
        assert {fp.state for fp in fps} == {10}
        assert len({(fp.station_id, fp.number) for fp in fps}) == len(fps)
