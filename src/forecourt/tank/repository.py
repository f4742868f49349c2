"""SQL for tanks: rows, readings, deliveries, the flows behind book stock, variance alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.pump.models import (
    Nozzle,
    PumpSale,
    Tank,
    TankDelivery,
    TankReading,
)


async def tanks_of(
    session: AsyncSession, *, station_ids: Sequence[int], active_only: bool = False
) -> list[Tank]:
    """Tanks of the given stations, by (station, number)."""
    if not station_ids:
        return []
    stmt = select(Tank).where(Tank.station_id.in_(station_ids))
    if active_only:
        stmt = stmt.where(Tank.active.is_(True))
    return list((await session.scalars(stmt.order_by(Tank.station_id, Tank.number))).all())


@dataclass(frozen=True, slots=True)
class StockMarker:
    """A cheap fingerprint of everything tank availability is derived from.

    `tanks` changes with tanks added, removed or re-configured (thresholds, active flag); the
    three ids grow with every gauge reading, delivery or reconciliation, and sale.
    """

    tanks: tuple[object, ...]
    reading_id: int
    delivery_id: int
    sale_id: int


async def stock_marker(session: AsyncSession) -> StockMarker:
    """Read the marker (one scan of `tanks`, three primary-key lookups)."""
    tanks = select(
        func.count(),
        func.max(Tank.id),
        func.sum(Tank.low_ml),
        func.sum(Tank.out_ml),
        func.sum(Tank.capacity_ml),
        func.count().filter(Tank.active.is_(True)),
    ).select_from(Tank)
    ids = select(
        select(func.max(TankReading.id)).scalar_subquery(),
        select(func.max(TankDelivery.id)).scalar_subquery(),
        select(func.max(PumpSale.id)).scalar_subquery(),
    )
    row = (await session.execute(tanks)).one()
    reading, delivery, sale = (await session.execute(ids)).one()
    return StockMarker(tuple(row), int(reading or 0), int(delivery or 0), int(sale or 0))


async def stations_with_tanks(session: AsyncSession) -> list[int]:
    """Ids of the stations that have at least one tank."""
    stmt = select(Tank.station_id).distinct().order_by(Tank.station_id)
    return list((await session.scalars(stmt)).all())


async def stations_touched_since(session: AsyncSession, *, since: StockMarker) -> set[int]:
    """Stations with a reading, delivery or sale newer than the marker's ids."""
    readings = (
        select(Tank.station_id)
        .join(TankReading, TankReading.tank_id == Tank.id)
        .where(TankReading.id > since.reading_id)
    )
    deliveries = (
        select(Tank.station_id)
        .join(TankDelivery, TankDelivery.tank_id == Tank.id)
        .where(TankDelivery.id > since.delivery_id)
    )
    sales = select(PumpSale.station_id).where(PumpSale.id > since.sale_id)
    found: set[int] = set()
    for stmt in (readings, deliveries, sales):
        found.update((await session.scalars(stmt.distinct())).all())
    return found


async def get(
    session: AsyncSession, *, station_id: int, number: int, for_update: bool = False
) -> Tank | None:
    """One tank by station and number, optionally row-locked for the transaction."""
    stmt = select(Tank).where(Tank.station_id == station_id, Tank.number == number)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def add(session: AsyncSession, row: Tank | TankDelivery | TankReading) -> None:
    """Insert a row and flush it (ids and constraint errors appear here)."""
    session.add(row)
    await session.flush()


async def delete(session: AsyncSession, tank: Tank) -> None:
    """Delete a tank (its readings and deliveries cascade)."""
    await session.delete(tank)
    await session.flush()


async def has_history(session: AsyncSession, *, tank_id: int) -> bool:
    """Whether the tank has any reading or delivery."""
    for model in (TankReading, TankDelivery):
        found = await session.scalar(select(model.id).where(model.tank_id == tank_id).limit(1))
        if found is not None:
            return True
    return False


async def delivered_since_book(
    session: AsyncSession, *, tank_ids: Sequence[int], until: datetime | None = None
) -> dict[int, int]:
    """Per tank: ml delivered with `book_since < ended_at <= until` (no upper bound if None)."""
    if not tank_ids:
        return {}
    cond = [TankDelivery.tank_id.in_(tank_ids), TankDelivery.ended_at > Tank.book_since]
    if until is not None:
        cond.append(TankDelivery.ended_at <= until)
    stmt = (
        select(TankDelivery.tank_id, func.coalesce(func.sum(TankDelivery.volume_ml), 0))
        .join(Tank, Tank.id == TankDelivery.tank_id)
        .where(*cond)
        .group_by(TankDelivery.tank_id)
    )
    return {tank_id: int(total) for tank_id, total in (await session.execute(stmt)).all()}


async def sold_since_book(
    session: AsyncSession, *, tank_ids: Sequence[int], until: datetime | None = None
) -> dict[int, int]:
    """Per tank: ml sold through its nozzles with `book_since < ended_at <= until`."""
    if not tank_ids:
        return {}
    cond = [Nozzle.tank_id.in_(tank_ids), PumpSale.ended_at > Tank.book_since]
    if until is not None:
        cond.append(PumpSale.ended_at <= until)
    stmt = (
        select(Nozzle.tank_id, func.coalesce(func.sum(PumpSale.volume_ml), 0))
        .select_from(PumpSale)
        .join(
            Nozzle,
            and_(
                Nozzle.station_id == PumpSale.station_id,
                Nozzle.number == PumpSale.nozzle_number,
            ),
        )
        .join(Tank, Tank.id == Nozzle.tank_id)
        .where(*cond)
        .group_by(Nozzle.tank_id)
    )
    rows = (await session.execute(stmt)).all()
    return {tank_id: int(total) for tank_id, total in rows if tank_id is not None}


async def latest_reading(session: AsyncSession, *, tank_id: int) -> TankReading | None:
    """The tank's newest reading by reading time."""
    stmt = (
        select(TankReading)
        .where(TankReading.tank_id == tank_id)
        .order_by(TankReading.measured_at.desc(), TankReading.id.desc())
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def readings(
    session: AsyncSession,
    *,
    tank_id: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[TankReading]:
    """Readings in a window, oldest first (the newest `limit` of them)."""
    stmt = select(TankReading).where(TankReading.tank_id == tank_id)
    if since is not None:
        stmt = stmt.where(TankReading.measured_at >= since)
    if until is not None:
        stmt = stmt.where(TankReading.measured_at <= until)
    stmt = stmt.order_by(TankReading.measured_at.desc(), TankReading.id.desc()).limit(limit)
    return list(reversed((await session.scalars(stmt)).all()))


async def delivery_by_ref(
    session: AsyncSession, *, station_id: int, delivery_ref: str
) -> tuple[TankDelivery, int] | None:
    """A delivery of any tank of the station by its reference, with that tank's number."""
    stmt = (
        select(TankDelivery, Tank.number)
        .join(Tank, Tank.id == TankDelivery.tank_id)
        .where(Tank.station_id == station_id, TankDelivery.delivery_ref == delivery_ref)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row is not None else None


async def deliveries(
    session: AsyncSession,
    *,
    tank_id: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[TankDelivery]:
    """Deliveries and reconciliations in a window, newest first."""
    stmt = select(TankDelivery).where(TankDelivery.tank_id == tank_id)
    if since is not None:
        stmt = stmt.where(TankDelivery.ended_at >= since)
    if until is not None:
        stmt = stmt.where(TankDelivery.ended_at <= until)
    stmt = stmt.order_by(TankDelivery.ended_at.desc(), TankDelivery.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())
