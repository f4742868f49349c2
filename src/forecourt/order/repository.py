"""All SQL of the order area."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import lock_row
from forecourt.fuel.models import Grade, StationPrice
from forecourt.loyalty.models import LoyaltyAccount
from forecourt.order.models import Order
from forecourt.pump.models import FuellingPointRow, Gateway, Nozzle
from forecourt.station.models import Station


@dataclass(frozen=True)
class PrepaySite:
    """What a pay-at-pump order needs of its station, read in one statement."""

    station_status: str
    nozzle: Nozzle | None
    fp: FuellingPointRow | None
    gateway_online: bool
    grade_name: str | None
    price_fen: int | None
    tier_code: str | None


async def prepay_site(
    session: AsyncSession, *, station_id: int, nozzle: int, member_id: int, at: datetime
) -> PrepaySite | None:
    """Station status, nozzle, fuelling point, gateway state, grade, price at `at`, member tier.

    The price is the newest non-cancelled one in force at `at` (as `current_prices`).
    """
    price = (
        select(StationPrice.price_fen)
        .where(
            StationPrice.station_id == Station.id,
            StationPrice.grade_code == Nozzle.grade_code,
            StationPrice.effective_at <= at,
            StationPrice.cancelled_at.is_(None),
        )
        .order_by(StationPrice.effective_at.desc(), StationPrice.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    tier = (
        select(LoyaltyAccount.tier_code)
        .where(LoyaltyAccount.member_id == member_id)
        .scalar_subquery()
    )
    stmt = (
        select(Station.status, Nozzle, FuellingPointRow, Gateway.online, Grade.name, price, tier)
        .select_from(Station)
        .outerjoin(Nozzle, and_(Nozzle.station_id == Station.id, Nozzle.number == nozzle))
        .outerjoin(FuellingPointRow, FuellingPointRow.id == Nozzle.fp_id)
        .outerjoin(Gateway, Gateway.station_id == Station.id)
        .outerjoin(Grade, Grade.code == Nozzle.grade_code)
        .where(Station.id == station_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return PrepaySite(
        station_status=row[0],
        nozzle=row[1],
        fp=row[2],
        gateway_online=bool(row[3]),
        grade_name=row[4],
        price_fen=row[5],
        tier_code=row[6],
    )


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
