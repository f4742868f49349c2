"""All SQL of the order area."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import lock_row
from forecourt.fuel.models import Grade, StationPrice
from forecourt.kit.prepared import Prepared
from forecourt.loyalty.models import LoyaltyAccount
from forecourt.order.models import Order
from forecourt.pump.models import FuellingPointRow, Gateway, Nozzle
from forecourt.station.models import Station


@dataclass(frozen=True)
class PrepaySite:
    """What a pay-at-pump order needs of its station, read in one statement."""

    station_status: str
    nozzle_number: int | None  # None: the station has no such nozzle
    nozzle_active: bool
    grade_code: str | None
    fp: FuellingPointRow | None  # the nozzle's fuelling point: its number and state only
    gateway_online: bool
    grade_name: str | None
    price_fen: int | None
    tier_code: str | None


_PRICE = (
    select(StationPrice.price_fen)
    .where(
        StationPrice.station_id == Station.id,
        StationPrice.grade_code == Nozzle.grade_code,
        StationPrice.effective_at <= bindparam("at"),
        StationPrice.cancelled_at.is_(None),
    )
    .order_by(StationPrice.effective_at.desc(), StationPrice.id.desc())
    .limit(1)
    .scalar_subquery()
)
_TIER = (
    select(LoyaltyAccount.tier_code)
    .where(LoyaltyAccount.member_id == bindparam("member_id"))
    .scalar_subquery()
)
PREPAY_SITE = Prepared(
    select(
        Station.status,
        Nozzle.number,
        Nozzle.active,
        Nozzle.grade_code,
        FuellingPointRow.number.label("fp_number"),
        FuellingPointRow.state.label("fp_state"),
        Gateway.online,
        Grade.name,
        _PRICE.label("price_fen"),
        _TIER.label("tier_code"),
    )
    .select_from(Station)
    .outerjoin(Nozzle, and_(Nozzle.station_id == Station.id, Nozzle.number == bindparam("nozzle")))
    .outerjoin(FuellingPointRow, FuellingPointRow.id == Nozzle.fp_id)
    .outerjoin(Gateway, Gateway.station_id == Station.id)
    .outerjoin(Grade, Grade.code == Nozzle.grade_code)
    .where(Station.id == bindparam("station_id"))
)


async def prepay_site(
    session: AsyncSession, *, station_id: int, nozzle: int, member_id: int, at: datetime
) -> PrepaySite | None:
    """Station status, nozzle, fuelling point, gateway state, grade, price at `at`, member tier.

    The price is the newest non-cancelled one in force at `at` (as `current_prices`).
    """
    row = await PREPAY_SITE.first(
        session, station_id=station_id, nozzle=nozzle, member_id=member_id, at=at
    )
    if row is None:
        return None
    fp = None
    if row.fp_number is not None:  # not added to the session: it only carries what was read
        fp = FuellingPointRow(number=row.fp_number, state=row.fp_state)
    return PrepaySite(
        station_status=row.status,
        nozzle_number=row.number,
        nozzle_active=bool(row.active),
        grade_code=row.grade_code,
        fp=fp,
        gateway_online=bool(row.online),
        grade_name=row.name,
        price_fen=row.price_fen,
        tier_code=row.tier_code,
    )


_ORDER_COLUMNS = tuple(column.key for column in Order.__table__.columns)
ADD = Prepared(insert(Order).values({key: bindparam(key) for key in _ORDER_COLUMNS}))


@dataclass(frozen=True, slots=True)
class OrderRow:
    """An order's columns that paying it reads, as read under its row lock."""

    id: str
    member_id: int
    station_id: int | None
    kind: str
    status: str
    nozzle_number: int | None
    fp_number: int | None
    sale_seq: int | None
    grade_code: str | None
    preset_fen: int | None
    payable_fen: int
    paid_fen: int
    settled_fen: int | None
    bonus_fen: int
    expires_at: datetime
    completed_at: datetime | None


_ROW = select(*(getattr(Order, field.name) for field in fields(OrderRow))).where(
    Order.id == bindparam("order_id")
)
LOCK = Prepared(lambda dialect: _ROW.with_for_update() if dialect == "postgresql" else _ROW)
SQLITE_WRITE_LOCK = Prepared(
    update(Order).where(Order.id == bindparam("order_id")).values(id=Order.id)
)
WRITE_PAID = Prepared(
    update(Order)
    .where(Order.id == bindparam("order_id"))
    .values(
        status=bindparam("status"),
        paid_fen=bindparam("paid_fen"),
        provider=bindparam("provider"),
        paid_at=bindparam("paid_at"),
        settled_fen=bindparam("settled_fen"),
        completed_at=bindparam("completed_at"),
    )
)


async def add(session: AsyncSession, order: Order) -> Order:
    """Insert an order; every column is taken from it as set (no model default applies)."""
    await session.flush()  # what was pending is written first, as an ORM flush would
    await ADD.run(session, **{key: getattr(order, key) for key in _ORDER_COLUMNS})
    return order


async def get(session: AsyncSession, order_id: str) -> Order | None:
    """An order by id."""
    return await session.get(Order, order_id)


async def reload(session: AsyncSession, order_id: str) -> Order | None:
    """An order read again (a loaded copy is refreshed in place)."""
    return await session.get(Order, order_id, populate_existing=True)


async def lock(session: AsyncSession, order_id: str) -> Order | None:
    """An order under a row lock."""
    row: Order | None = await lock_row(session, Order, order_id)
    return row


async def locked(session: AsyncSession, order_id: str) -> OrderRow | None:
    """An order's row under a row lock, as `lock` takes it (pending changes flushed first)."""
    await session.flush()
    if session.get_bind().dialect.name == "sqlite":
        await SQLITE_WRITE_LOCK.run(session, order_id=order_id)
    row = await LOCK.first(session, order_id=order_id)
    return OrderRow(*row) if row is not None else None


async def write_paid(
    session: AsyncSession,
    *,
    order_id: str,
    status: str,
    paid_fen: int,
    provider: str,
    paid_at: datetime,
    settled_fen: int | None,
    completed_at: datetime | None,
) -> None:
    """Write a (locked) order once when it is paid: its new state and the payment's figures."""
    await WRITE_PAID.run(
        session,
        order_id=order_id,
        status=status,
        paid_fen=paid_fen,
        provider=provider,
        paid_at=paid_at,
        settled_fen=settled_fen,
        completed_at=completed_at,
    )


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
