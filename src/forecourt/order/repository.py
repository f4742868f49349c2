"""All SQL of the order area."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import lock_row
from forecourt.order.models import Order


async def add(session: AsyncSession, order: Order) -> Order:
    """Insert an order."""
    session.add(order)
    await session.flush()
    return order


async def get(session: AsyncSession, order_id: str) -> Order | None:
    """An order by id."""
    return await session.get(Order, order_id)


async def lock(session: AsyncSession, order_id: str) -> Order | None:
    """An order under a row lock."""
    row: Order | None = await lock_row(session, Order, order_id)
    return row


async def for_member(
    session: AsyncSession, *, member_id: int, before: datetime | None, limit: int
) -> Sequence[Order]:
    """A member's orders, newest first."""
    stmt = select(Order).where(Order.member_id == member_id)
    if before is not None:
        stmt = stmt.where(Order.created_at < before)
    stmt = stmt.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    return (await session.scalars(stmt)).all()


async def for_stations(
    session: AsyncSession,
    *,
    station_ids: Sequence[int] | None,
    status: str | None,
    since: datetime | None,
    limit: int,
) -> Sequence[Order]:
    """Orders of some stations (all when None), newest first."""
    stmt = select(Order)
    if station_ids is not None:
        stmt = stmt.where(Order.station_id.in_(station_ids))
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if since is not None:
        stmt = stmt.where(Order.created_at >= since)
    stmt = stmt.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    return (await session.scalars(stmt)).all()


async def expired_pending(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[str]:
    """Ids of pending orders past their expiry."""
    stmt = (
        select(Order.id)
        .where(Order.status == "pending", Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def pending_for_sale(
    session: AsyncSession, *, station_id: int, fp_number: int, seq: int
) -> Sequence[Order]:
    """Open post-pay orders of one pump sale."""
    stmt = select(Order).where(
        Order.station_id == station_id,
        Order.fp_number == fp_number,
        Order.sale_seq == seq,
        Order.status.in_(("pending", "paid")),
    )
    return (await session.scalars(stmt)).all()
