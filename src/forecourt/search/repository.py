"""SQL for nearby search: index snapshots, change detection and the PostGIS nearest query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    String,
    cast,
    column,
    func,
    select,
    table,
    text,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from forecourt.fuel.models import Grade, StationPrice
from forecourt.search.index import PriceRows, StationColumns
from forecourt.station.models import Station

LISTED_STATUS = "active"
"""Only stations in this status appear in nearby search."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A station proposed by the PostGIS nearest-neighbour scan."""

    id: int
    lat: float
    lng: float
    open_24h: bool
    opens_at: str | None
    closes_at: str | None
    knn_m: float


@dataclass(frozen=True, slots=True)
class FutureBaseline:
    """Scheduled (not yet effective) prices seen by a snapshot: the lowest id and how many."""

    built_at: datetime
    first_id: int
    count: int


async def table_version(session: AsyncSession) -> tuple[object, ...]:
    """A cheap fingerprint of stations, new prices and grades (index lookups, one small scan).

    Station edits move `updated_at`, additions and deletions `count`/`max(id)`; prices are
    append-only except for cancelling scheduled ones (see `scheduled_still_live`).
    """
    stmt = select(
        select(func.count()).select_from(Station).scalar_subquery(),
        select(func.max(Station.id)).scalar_subquery(),
        select(func.max(Station.updated_at)).scalar_subquery(),
        select(func.max(StationPrice.id)).scalar_subquery(),
    )
    row = (await session.execute(stmt)).one()
    return (*row, tuple(await grades(session)))


async def scheduled_still_live(session: AsyncSession, *, baseline: FutureBaseline) -> int:
    """How many of the scheduled prices a snapshot saw are still not cancelled."""
    if baseline.count == 0:
        return 0
    stmt = (
        select(func.count())
        .select_from(StationPrice)
        .where(
            StationPrice.id >= baseline.first_id,
            StationPrice.effective_at > baseline.built_at,
            StationPrice.cancelled_at.is_(None),
        )
    )
    return int(await session.scalar(stmt) or 0)


async def _fetch_plain(session: AsyncSession, stmt: ClauseElement) -> Sequence[Sequence[Any]]:
    """Every row as the driver's own tuples, skipping SQLAlchemy's row objects.

    Only for the bulk snapshot loads (hundreds of thousands of rows, statements without
    user input): the statement is rendered with literal values and run on the driver
    connection of the session's transaction.
    """
    conn = await session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "sqlite":  # aiosqlite
        cursor = await driver.execute(sql)
        try:
            rows: Sequence[Sequence[Any]] = await cursor.fetchall()
        finally:
            await cursor.close()
        return rows
    records: Sequence[Sequence[Any]] = await driver.fetch(sql)  # asyncpg
    return records


async def listed_stations(session: AsyncSession) -> StationColumns:
    """Every listed station's card, position and hours, as columns (by id)."""
    # Raw column values (no per-row type processing): this loads the whole network at once.
    stmt = (
        select(
            Station.id,
            Station.lat,
            Station.lng,
            type_coerce(Station.open_24h, Integer),
            Station.opens_at,
            Station.closes_at,
            Station.code,
            Station.name,
            Station.brand,
            Station.address,
            Station.phone,
            type_coerce(Station.services, String),
        )
        .where(Station.status == LISTED_STATUS)
        .order_by(Station.id)
    )
    rows = await _fetch_plain(session, stmt)
    if not rows:
        return StationColumns(ids=[], lats=[], lngs=[], open_24h=[], opens_at=[], closes_at=[])
    cols = list(zip(*rows, strict=True))
    return StationColumns(
        ids=cols[0],
        lats=cols[1],
        lngs=cols[2],
        open_24h=[bool(v) for v in cols[3]],
        opens_at=cols[4],
        closes_at=cols[5],
        codes=cols[6],
        names=cols[7],
        brands=cols[8],
        addresses=cols[9],
        phones=cols[10],
        services=_services(cols[11]),
    )


def _services(column: Sequence[object]) -> list[tuple[str, ...]]:
    """Decode the JSON service lists (few distinct values: decoded once each)."""
    seen: dict[object, tuple[str, ...]] = {}
    out = []
    for raw in column:
        key = raw if isinstance(raw, str | bytes | None) else orjson.dumps(raw)
        value = seen.get(key)
        if value is None:
            decoded = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
            value = tuple(str(v) for v in decoded) if isinstance(decoded, list) else ()
            seen[key] = value
        out.append(value)
    return out


async def live_prices(
    session: AsyncSession, *, built_at: datetime
) -> tuple[PriceRows, FutureBaseline]:
    """Every non-cancelled price (epoch-second moments) and the scheduled-price baseline."""
    dialect = session.get_bind().dialect.name
    moment = (
        type_coerce(StationPrice.effective_at, String)  # ISO text: parsed in bulk below
        if dialect == "sqlite"
        else cast(func.extract("epoch", StationPrice.effective_at), Float)
    )
    stmt = select(
        StationPrice.station_id,
        StationPrice.grade_code,
        moment,
        StationPrice.id,
        StationPrice.price_fen,
    ).where(StationPrice.cancelled_at.is_(None))
    rows = await _fetch_plain(session, stmt)
    if not rows:
        empty = PriceRows(station_ids=[], grades=[], effective=[], ids=[], price_fen=[])
        return empty, FutureBaseline(built_at=built_at, first_id=0, count=0)
    station_ids, grade_codes, raw, ids, fens = zip(*rows, strict=True)
    if dialect == "sqlite":
        micros = np.array(raw, dtype="datetime64[us]").astype(np.int64)
        effective = micros / 1e6
    else:
        effective = np.asarray(raw, dtype=np.float64)
    id_array = np.asarray(ids, dtype=np.int64)
    future = effective > built_at.timestamp()
    baseline = FutureBaseline(
        built_at=built_at,
        first_id=int(id_array[future].min()) if future.any() else 0,
        count=int(future.sum()),
    )
    prices = PriceRows(
        station_ids=station_ids,
        grades=grade_codes,
        effective=effective.tolist(),
        ids=ids,
        price_fen=fens,
    )
    return prices, baseline


async def grades(session: AsyncSession) -> list[tuple[str, str]]:
    """(code, name) of every grade in display order."""
    stmt = select(Grade.code, Grade.name).order_by(Grade.sort_order, Grade.code)
    return [(code, name) for code, name in (await session.execute(stmt)).all()]


async def has_geography_column(session: AsyncSession) -> bool:
    """True on PostgreSQL when migration 0002 added `stations.geog` (PostGIS present)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    stmt = text(
        "SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'stations' "
        "AND column_name = 'geog'"
    )
    return (await session.execute(stmt)).first() is not None


_stations = table(
    "stations",
    column("id", Integer),
    column("lat", Float),
    column("lng", Float),
    column("open_24h", Boolean),
    column("opens_at", String),
    column("closes_at", String),
    column("status", String),
    column("geog"),  # geography(Point, 4326), generated from lng/lat (migration 0002)
)


async def postgis_nearest(
    session: AsyncSession,
    *,
    lat: float,
    lng: float,
    within_m: float,
    limit: int,
    grade: str | None,
    at: datetime,
) -> list[Candidate]:
    """Listed stations nearest a WGS-84 point by PostGIS sphere distance (GiST KNN)."""
    s = _stations.c
    point = func.geography(func.ST_SetSRID(func.ST_MakePoint(lng, lat), 4326))
    knn = s.geog.op("<->", return_type=Float)(point)
    stmt = (
        select(s.id, s.lat, s.lng, s.open_24h, s.opens_at, s.closes_at, knn.label("knn_m"))
        .where(
            s.status == LISTED_STATUS,
            func.ST_DWithin(s.geog, point, within_m, False),
        )
        .order_by(knn)
        .limit(limit)
    )
    if grade is not None:
        stmt = stmt.where(
            select(StationPrice.id)
            .where(
                StationPrice.station_id == s.id,
                StationPrice.grade_code == grade,
                StationPrice.cancelled_at.is_(None),
                StationPrice.effective_at <= at,
            )
            .exists()
        )
    rows = (await session.execute(stmt)).all()
    return [Candidate(*row) for row in rows]


async def stations_by_ids(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, Station]:
    """The stations with the given ids, by id."""
    if not ids:
        return {}
    rows = await session.scalars(select(Station).where(Station.id.in_(ids)))
    return {station.id: station for station in rows}
