"""SQL for stations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.station.models import Station


async def get(session: AsyncSession, station_id: int) -> Station | None:
    """A station by id."""
    return await session.get(Station, station_id)


async def get_for_update(session: AsyncSession, station_id: int) -> Station | None:
    """A station by id, row-locked for the rest of the transaction."""
    stmt = select(Station).where(Station.id == station_id).with_for_update()
    return (await session.scalars(stmt)).first()


async def by_code(session: AsyncSession, code: str) -> Station | None:
    """A station by its code."""
    return (await session.scalars(select(Station).where(Station.code == code))).first()


async def page(
    session: AsyncSession,
    *,
    ids: Sequence[int] | None,
    city: str | None,
    brand: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Station], int]:
    """Stations filtered, in id order, with the total count; `ids=None` means all."""
    stmt = select(Station)
    if ids is not None:
        stmt = stmt.where(Station.id.in_(ids))
    if city:
        stmt = stmt.where(Station.city == city)
    if brand:
        stmt = stmt.where(Station.brand == brand)
    if status:
        stmt = stmt.where(Station.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = await session.scalars(stmt.order_by(Station.id).offset(offset).limit(limit))
    return list(rows.all()), int(total or 0)


async def add(session: AsyncSession, station: Station) -> Station:
    """Insert a station and assign its id."""
    session.add(station)
    await session.flush()
    return station


async def delete(session: AsyncSession, station: Station) -> None:
    """Delete a station (its prices go with it)."""
    await session.delete(station)
    await session.flush()
