"""Both backends, reading real tables, give exactly the brute-force haversine answer."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select

from forecourt.db import Database
from forecourt.fuel.models import StationPrice
from forecourt.fuel.repository import current_prices
from forecourt.kit import clock
from forecourt.search import service
from forecourt.search.service import NearbySearch
from forecourt.station.hours import parse_hhmm
from forecourt.station.models import Station
from tests.fixtures.factories import add_grades
from tests.search import bruteforce
from tests.search.conftest import require_postgis

GRADES = ("92", "95", "98", "0", "-10")
CENTRES = ((25.04, 102.71), (39.90, 116.40), (30.57, 104.07))
BASE = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


async def _seed(db: Database, *, n: int, seed: int) -> bruteforce.Stations:
    """Random stations and prices inserted in bulk; returns what brute force needs."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        c = rnd.choice(CENTRES)
        open_24h = rnd.random() < 0.5
        opens = rnd.randrange(1440)
        rows.append(
            {
                "code": f"R{seed}-{i:05d}",
                "name": f"随机站{i}",
                "brand": "民营",
                "address": "随机路",
                "province": "云南省",
                "city": "昆明市",
                "lat": c[0] + rnd.gauss(0, 0.12),
                "lng": c[1] + rnd.gauss(0, 0.12),
                "phone": None,
                "open_24h": open_24h,
                "opens_at": None if open_24h else _hhmm(opens),
                "closes_at": None if open_24h else _hhmm((opens + rnd.randrange(1, 1440)) % 1440),
                "services": [],
                "status": "active" if rnd.random() < 0.9 else "paused",
            }
        )
        if i and rnd.random() < 0.02:  # same position as an earlier station: a distance tie
            rows[-1]["lat"], rows[-1]["lng"] = rows[i - 1]["lat"], rows[i - 1]["lng"]
    async with db.unit_of_work() as session:
        await add_grades(session)
        ids = (await session.scalars(insert(Station).returning(Station.id), rows)).all()
        prices = []
        for sid in ids:
            for grade, share in zip(GRADES, (0.95, 0.9, 0.4, 0.6, 0.1), strict=True):
                if rnd.random() < share:
                    for _ in range(rnd.choice((1, 1, 2))):
                        moment = BASE + timedelta(hours=rnd.uniform(-72, 72))
                        cancelled = moment if rnd.random() < 0.1 else None
                        prices.append(
                            {
                                "station_id": sid,
                                "grade_code": grade,
                                "price_fen": 800,
                                "effective_at": moment,
                                "cancelled_at": cancelled,
                            }
                        )
        await session.execute(insert(StationPrice), prices)
    async with db.read_only() as session:
        stations = (
            await session.execute(
                select(
                    Station.id,
                    Station.lat,
                    Station.lng,
                    Station.status,
                    Station.open_24h,
                    Station.opens_at,
                    Station.closes_at,
                ).order_by(Station.id)
            )
        ).all()
        live = (
            await session.execute(
                select(
                    StationPrice.station_id, StationPrice.grade_code, StationPrice.effective_at
                ).where(StationPrice.cancelled_at.is_(None))
            )
        ).all()
    row_of = {s.id: r for r, s in enumerate(stations)}
    since = {g: np.full(len(stations), math.inf) for g in GRADES}
    for sid, grade, moment in live:
        r = row_of[sid]
        since[grade][r] = min(since[grade][r], moment.timestamp())
    return bruteforce.Stations(
        ids=np.array([s.id for s in stations], dtype=np.int64),
        lat=np.array([s.lat for s in stations]),
        lng=np.array([s.lng for s in stations]),
        listed=np.array([s.status == "active" for s in stations]),
        open_24h=np.array([s.open_24h for s in stations]),
        opens=np.array([parse_hhmm(s.opens_at) for s in stations], dtype=np.int64),
        closes=np.array([parse_hhmm(s.closes_at) for s in stations], dtype=np.int64),
        since=since,
    )


def _before_every_query() -> None:
    """Move the clock before the earliest query time: a snapshot answers from its build on."""
    clock.travel(BASE - timedelta(hours=80) - clock.now())


@dataclass(frozen=True)
class Query:
    """One random nearby query (WGS-84)."""

    lat: float
    lng: float
    k: int
    radius_m: float
    grade: str | None
    open_minute: int | None
    now: datetime


def _query(rnd: random.Random, world: bruteforce.Stations) -> Query:
    if rnd.random() < 0.6:
        row = rnd.randrange(len(world.ids))
        lat, lng = world.lat[row] + rnd.gauss(0, 0.01), world.lng[row] + rnd.gauss(0, 0.01)
    else:
        c = rnd.choice(CENTRES)
        lat, lng = c[0] + rnd.gauss(0, 0.25), c[1] + rnd.gauss(0, 0.25)
    return Query(
        lat=float(lat),
        lng=float(lng),
        k=rnd.choice((1, 3, 10, 10, 25, 50)),
        radius_m=math.exp(rnd.uniform(math.log(300), math.log(50_000))),
        grade=rnd.choice((None, None, *GRADES)),
        open_minute=rnd.choice((None, None, rnd.randrange(1440))),
        now=BASE + timedelta(hours=rnd.uniform(-72, 72)),
    )


def _brute(world: bruteforce.Stations, q: Query) -> list[tuple[int, float]]:
    return bruteforce.nearest(
        world,
        q.lat,
        q.lng,
        k=q.k,
        radius_m=q.radius_m,
        at=q.now.timestamp(),
        grade=q.grade,
        open_minute=q.open_minute,
    )


@pytest.mark.timeout(240)
async def test_postgis_equals_brute_force_on_ten_thousand_random_queries(db: Database) -> None:
    await require_postgis(db)
    world = await _seed(db, n=3000, seed=21)
    rnd = random.Random(22)
    nonempty = 0
    async with db.read_only() as session:
        for _ in range(10_000):
            q = _query(rnd, world)
            hits = await service.postgis_nearest(
                session,
                lat=q.lat,
                lng=q.lng,
                k=q.k,
                radius_m=q.radius_m,
                grade=q.grade,
                open_minute=q.open_minute,
                now=q.now,
            )
            want = _brute(world, q)
            assert [h.station_id for h in hits] == [sid for sid, _ in want], q
            for hit, (_, d) in zip(hits, want, strict=True):
                assert hit.distance_m == pytest.approx(d, rel=1e-12, abs=1e-6)
            nonempty += bool(want)
    assert nonempty > 6000


async def test_memory_backend_loaded_from_tables_equals_brute_force(db: Database) -> None:
    world = await _seed(db, n=2000, seed=31)
    _before_every_query()
    search = NearbySearch(backend="memory", refresh_seconds=3600)
    rnd = random.Random(32)
    for _ in range(2000):
        q = _query(rnd, world)
        index = await search.index(db)
        hits = index.nearest(
            q.lat,
            q.lng,
            k=q.k,
            radius_m=q.radius_m,
            at=q.now.timestamp(),
            grade=q.grade,
            open_minute=q.open_minute,
        )
        assert [h.station_id for h in hits] == [sid for sid, _ in _brute(world, q)]
    assert search.rebuilds == 1
    assert await search.backend(db) == "memory"
    assert len(await search.index(db)) == int(world.listed.sum())


async def test_service_answers_agree_across_backends(db: Database) -> None:
    await require_postgis(db)
    world = await _seed(db, n=1500, seed=41)
    _before_every_query()
    memory = NearbySearch(backend="memory")
    postgis = NearbySearch(backend="postgis")
    rnd = random.Random(42)
    for _ in range(500):
        q = _query(rnd, world)
        a = await memory.nearest(
            db, lat=q.lat, lng=q.lng, k=q.k, radius_m=q.radius_m, grade=q.grade,
            open_only=False, now=q.now,
        )  # fmt: skip
        b = await postgis.nearest(
            db, lat=q.lat, lng=q.lng, k=q.k, radius_m=q.radius_m, grade=q.grade,
            open_only=False, now=q.now,
        )  # fmt: skip
        assert a == b
    assert await postgis.backend(db) == "postgis"


async def test_required_postgis_fails_instead_of_skipping(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("about PostgreSQL without PostGIS")
    from tests.search import conftest

    async def missing(session: object) -> bool:
        return False

    monkeypatch.setattr(conftest, "has_geography_column", missing)
    monkeypatch.setattr(conftest, "REQUIRE_POSTGIS", True)
    with pytest.raises(pytest.fail.Exception, match="FORECOURT_TEST_REQUIRE_POSTGIS"):
        await require_postgis(db)
    monkeypatch.setattr(conftest, "REQUIRE_POSTGIS", False)
    with pytest.raises(pytest.skip.Exception):
        await require_postgis(db)


async def test_snapshot_prices_equal_current_prices(db: Database) -> None:
    await _seed(db, n=400, seed=51)
    async with db.unit_of_work() as session:  # two prices at the same moment: the later id wins
        sid = await session.scalar(select(Station.id).where(Station.status == "active").limit(1))
        assert sid is not None
        moment = clock.now() + timedelta(hours=5)
        for fen in (811, 822):
            session.add(
                StationPrice(station_id=sid, grade_code="98", price_fen=fen, effective_at=moment)
            )
    search = NearbySearch(backend="memory", refresh_seconds=3600)
    index = await search.index(db)
    async with db.read_only() as session:
        ids = [int(i) for i in (await session.scalars(select(Station.id))).all()]
        start = clock.now()
        for hours in (0, 1, 5, 13, 29, 47, 71, 90):
            at = start + timedelta(hours=hours)
            rows = await current_prices(session, station_ids=ids, at=at)
            expected: dict[int, list[tuple[str, int]]] = {}
            for row in rows:
                expected.setdefault(row.station_id, []).append((row.grade_code, row.price_fen))
            order = {g: i for i, g in enumerate(GRADES)}
            for station_id in ids:
                want = sorted(expected.get(station_id, []), key=lambda p: order[p[0]])
                if index.card(station_id) is None:
                    continue  # paused: not in the snapshot
                assert index.prices_at(station_id, at.timestamp()) == want, (station_id, hours)
        assert index.prices_at(sid, (moment + timedelta(seconds=1)).timestamp(), "98") == [
            ("98", 822)
        ]
