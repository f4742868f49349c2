"""SQL for grades, prices and caps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.fuel.models import Grade, PriceCap, StationPrice


def _live_prices(at: datetime) -> Select[int, str, datetime]:
    """Per (station, grade): the newest effective, non-cancelled price's moment."""
    return (
        select(
            StationPrice.station_id,
            StationPrice.grade_code,
            func.max(StationPrice.effective_at).label("effective_at"),
        )
        .where(StationPrice.effective_at <= at, StationPrice.cancelled_at.is_(None))
        .group_by(StationPrice.station_id, StationPrice.grade_code)
    )


async def current_prices(
    session: AsyncSession,
    *,
    station_ids: Sequence[int],
    at: datetime,
    grade: str | None = None,
) -> list[StationPrice]:
    """The price in force at `at` for each (station, grade) of the given stations."""
    if not station_ids:
        return []
    live = _live_prices(at).where(StationPrice.station_id.in_(station_ids))
    if grade is not None:
        live = live.where(StationPrice.grade_code == grade)
    sub = live.subquery()
    stmt = (
        select(StationPrice)
        .join(
            sub,
            and_(
                StationPrice.station_id == sub.c.station_id,
                StationPrice.grade_code == sub.c.grade_code,
                StationPrice.effective_at == sub.c.effective_at,
            ),
        )
        .where(StationPrice.cancelled_at.is_(None))
        .order_by(StationPrice.station_id, StationPrice.grade_code, StationPrice.id.desc())
    )
    rows = (await session.scalars(stmt)).all()
    seen: set[tuple[int, str]] = set()
    result: list[StationPrice] = []
    for row in rows:
        key = (row.station_id, row.grade_code)
        if key not in seen:
            seen.add(key)
            result.append(row)
    return result


async def cap_at(
    session: AsyncSession, *, province: str, grade: str, at: datetime
) -> PriceCap | None:
    """The provincial cap in force at `at`, if any."""
    stmt = (
        select(PriceCap)
        .where(
            PriceCap.province == province,
            PriceCap.grade_code == grade,
            PriceCap.effective_at <= at,
        )
        .order_by(PriceCap.effective_at.desc(), PriceCap.id.desc())
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def list_grades(session: AsyncSession, *, active_only: bool = False) -> list[Grade]:
    """All grades in display order."""
    stmt = select(Grade).order_by(Grade.sort_order, Grade.code)
    if active_only:
        stmt = stmt.where(Grade.active.is_(True))
    return list((await session.scalars(stmt)).all())


async def get_grade(session: AsyncSession, code: str) -> Grade | None:
    """A grade by code."""
    return await session.get(Grade, code)


async def add(session: AsyncSession, row: Grade | PriceCap | StationPrice) -> None:
    """Insert a row and flush it."""
    session.add(row)
    await session.flush()


async def caps(session: AsyncSession, *, province: str | None) -> list[PriceCap]:
    """Caps, newest first, optionally for one province."""
    stmt = select(PriceCap).order_by(PriceCap.effective_at.desc(), PriceCap.id.desc())
    if province:
        stmt = stmt.where(PriceCap.province == province)
    return list((await session.scalars(stmt)).all())


async def price_history(
    session: AsyncSession, *, station_id: int, grade: str | None, limit: int
) -> list[StationPrice]:
    """Price rows of a station, newest effective first."""
    stmt = select(StationPrice).where(StationPrice.station_id == station_id)
    if grade:
        stmt = stmt.where(StationPrice.grade_code == grade)
    stmt = stmt.order_by(StationPrice.effective_at.desc(), StationPrice.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def scheduled(
    session: AsyncSession, *, station_id: int, after: datetime
) -> list[StationPrice]:
    """Not-yet-effective, non-cancelled prices of a station, soonest first."""
    stmt = (
        select(StationPrice)
        .where(
            StationPrice.station_id == station_id,
            StationPrice.effective_at > after,
            StationPrice.cancelled_at.is_(None),
        )
        .order_by(StationPrice.effective_at, StationPrice.id)
    )
    return list((await session.scalars(stmt)).all())


async def price_for_update(
    session: AsyncSession, *, station_id: int, price_id: int
) -> StationPrice | None:
    """One price row of a station, row-locked."""
    stmt = (
        select(StationPrice)
        .where(StationPrice.id == price_id, StationPrice.station_id == station_id)
        .with_for_update()
    )
    return (await session.scalars(stmt)).first()


async def due_unannounced(session: AsyncSession, *, at: datetime, limit: int) -> list[StationPrice]:
    """Prices that have taken effect but were not yet announced, row-locked."""
    stmt = (
        select(StationPrice)
        .where(
            StationPrice.announced_at.is_(None),
            StationPrice.effective_at <= at,
            StationPrice.cancelled_at.is_(None),
        )
        .order_by(StationPrice.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(stmt)).all())
