"""SQL of the points mall: items, stock by conditional update, redemptions under row locks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import lock_row
from forecourt.loyalty.models import MallItem, Redemption

OPEN = "awaiting_pickup"


async def items(session: AsyncSession, *, active_only: bool) -> Sequence[MallItem]:
    """The catalogue, in display order."""
    stmt = select(MallItem)
    if active_only:
        stmt = stmt.where(MallItem.active.is_(True))
    return (await session.scalars(stmt.order_by(MallItem.sort, MallItem.id))).all()


async def item(session: AsyncSession, item_id: int) -> MallItem | None:
    """One item (fresh from the database)."""
    return await session.get(MallItem, item_id, populate_existing=True)


async def lock_item(session: AsyncSession, item_id: int) -> MallItem | None:
    """One item under a row lock."""
    row: MallItem | None = await lock_row(session, MallItem, item_id)
    return row


async def item_by_sku(session: AsyncSession, sku: str) -> MallItem | None:
    """One item by its SKU."""
    return (await session.scalars(select(MallItem).where(MallItem.sku == sku))).first()


async def take_stock(session: AsyncSession, *, item_id: int, quantity: int, now: datetime) -> bool:
    """Take `quantity` units if that many are left (one conditional update; False otherwise)."""
    stmt = (
        update(MallItem)
        .where(MallItem.id == item_id, MallItem.stock >= quantity, MallItem.active.is_(True))
        .values(stock=MallItem.stock - quantity, updated_at=now)
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def return_stock(
    session: AsyncSession, *, item_id: int, quantity: int, now: datetime
) -> None:
    """Put units back (a cancelled redemption)."""
    stmt = (
        update(MallItem)
        .where(MallItem.id == item_id)
        .values(stock=MallItem.stock + quantity, updated_at=now)
    )
    await session.execute(stmt)


async def redeemed_in_month(
    session: AsyncSession, *, member_id: int, item_id: int, month: int
) -> int:
    """Units of an item the member redeemed (not cancelled) in a business month."""
    stmt = select(func.coalesce(func.sum(Redemption.quantity), 0)).where(
        Redemption.member_id == member_id,
        Redemption.item_id == item_id,
        Redemption.month == month,
        Redemption.status != "cancelled",
    )
    return int(await session.scalar(stmt) or 0)


async def add(session: AsyncSession, row: Redemption) -> Redemption:
    """Insert a redemption."""
    session.add(row)
    await session.flush()
    return row


async def code_taken(session: AsyncSession, code: str) -> bool:
    """True when a redemption already has this pick-up code."""
    stmt = select(func.count()).where(Redemption.pickup_code == code)
    return bool(await session.scalar(stmt))


async def redemption(session: AsyncSession, redemption_id: int) -> Redemption | None:
    """One redemption (no lock)."""
    return await session.get(Redemption, redemption_id)


async def lock(session: AsyncSession, redemption_id: int) -> Redemption | None:
    """One redemption under a row lock."""
    row: Redemption | None = await lock_row(session, Redemption, redemption_id)
    return row


async def by_code(session: AsyncSession, code: str) -> Redemption | None:
    """The redemption with a pick-up code (no lock)."""
    return (await session.scalars(select(Redemption).where(Redemption.pickup_code == code))).first()


async def of_member(
    session: AsyncSession, *, member_id: int, before_id: int | None, limit: int
) -> Sequence[Redemption]:
    """A member's redemptions, newest first."""
    stmt = select(Redemption).where(Redemption.member_id == member_id)
    if before_id is not None:
        stmt = stmt.where(Redemption.id < before_id)
    return (await session.scalars(stmt.order_by(Redemption.id.desc()).limit(limit))).all()


async def of_station(
    session: AsyncSession, *, station_id: int, status: str | None, limit: int
) -> Sequence[Redemption]:
    """A station's redemptions, newest first."""
    stmt = select(Redemption).where(Redemption.station_id == station_id)
    if status is not None:
        stmt = stmt.where(Redemption.status == status)
    return (await session.scalars(stmt.order_by(Redemption.id.desc()).limit(limit))).all()


async def overdue(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    """Redemptions never picked up before their deadline."""
    stmt = (
        select(Redemption.id)
        .where(Redemption.status == OPEN, Redemption.expires_at <= now)
        .order_by(Redemption.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())
