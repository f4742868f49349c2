"""SQL aggregation of sales for shifts, the dashboard and exports (SQLite and PostgreSQL).

Time buckets are whole seconds since the window's start divided by the bucket size, computed
in SQL on both engines, so an hour or a day of Asia/Shanghai is one bucket when the window
starts at a local hour or midnight (the zone has no daylight saving).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from forecourt.backoffice.totals import CASH, RefundRow, SaleRow
from forecourt.order.models import Order
from forecourt.payment.models import Reconciliation, Refund
from forecourt.pump.models import FuellingPointRow, PumpSale

PAID_STATUSES = ("paid", "fuelling", "completed", "refunded")
STAFF_CLEARED = "staff:%"


def _epoch(
    session: AsyncSession, column: ColumnElement[Any] | InstrumentedAttribute[Any]
) -> ColumnElement[int]:
    """Whole seconds since 1970 of a stored UTC time."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)


def _bucket(
    session: AsyncSession,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    start: datetime,
    size_seconds: int | None,
) -> ColumnElement[int]:
    if size_seconds is None:
        return literal(0, BigInteger)
    offset = _epoch(session, column) - int(start.timestamp())
    return offset // size_seconds


async def sales(
    session: AsyncSession,
    *,
    station_ids: Sequence[int] | None,
    start: datetime,
    end: datetime,
    bucket_seconds: int | None = None,
) -> list[SaleRow]:
    """Orders paid and counter sales cleared in [start, end), per bucket, method and grade."""
    paid = select(
        _bucket(session, Order.paid_at, start, bucket_seconds).label("bucket"),
        func.coalesce(Order.provider, "unknown").label("method"),
        func.coalesce(Order.grade_code, "").label("grade"),
        func.coalesce(Order.volume_ml, 0).label("volume_ml"),
        Order.paid_fen.label("paid_fen"),
        Order.discount_fen.label("discount_fen"),
    ).where(
        Order.kind != "topup",
        Order.status.in_(PAID_STATUSES),
        Order.paid_at >= start,
        Order.paid_at < end,
    )
    counter = select(
        _bucket(session, PumpSale.cleared_at, start, bucket_seconds).label("bucket"),
        literal(CASH).label("method"),
        PumpSale.grade_code.label("grade"),
        PumpSale.volume_ml.label("volume_ml"),
        PumpSale.amount_fen.label("paid_fen"),
        literal(0, BigInteger).label("discount_fen"),
    ).where(
        PumpSale.status == "cleared",
        PumpSale.cleared_by.like(STAFF_CLEARED),
        PumpSale.cleared_at >= start,
        PumpSale.cleared_at < end,
    )
    if station_ids is not None:
        paid = paid.where(Order.station_id.in_(station_ids))
        counter = counter.where(PumpSale.station_id.in_(station_ids))
    else:
        paid = paid.where(Order.station_id.is_not(None))
    rows: list[SaleRow] = []
    for inner in (paid.subquery(), counter.subquery()):
        stmt = select(
            inner.c.bucket,
            inner.c.method,
            inner.c.grade,
            func.count(),
            func.sum(inner.c.volume_ml),
            func.sum(inner.c.paid_fen),
            func.sum(inner.c.discount_fen),
        ).group_by(inner.c.bucket, inner.c.method, inner.c.grade)
        for r in (await session.execute(stmt)).all():
            rows.append(
                SaleRow(
                    bucket=int(r[0]),
                    method=str(r[1]),
                    grade=str(r[2]),
                    count=int(r[3]),
                    volume_ml=int(r[4] or 0),
                    paid_fen=int(r[5] or 0),
                    discount_fen=int(r[6] or 0),
                )
            )
    return rows


async def refunds(
    session: AsyncSession,
    *,
    station_ids: Sequence[int] | None,
    start: datetime,
    end: datetime,
    bucket_seconds: int | None = None,
) -> list[RefundRow]:
    """Refunds of station orders that succeeded in [start, end), per bucket, method, grade."""
    inner = (
        select(
            _bucket(session, Refund.completed_at, start, bucket_seconds).label("bucket"),
            Refund.provider.label("method"),
            func.coalesce(Order.grade_code, "").label("grade"),
            Refund.amount_fen.label("amount_fen"),
        )
        .join(Order, Order.id == Refund.order_id)
        .where(
            Refund.status == "succeeded",
            Refund.kind != "withdrawal",
            Refund.completed_at >= start,
            Refund.completed_at < end,
        )
    )
    if station_ids is not None:
        inner = inner.where(Order.station_id.in_(station_ids))
    else:
        inner = inner.where(Order.station_id.is_not(None))
    sub = inner.subquery()
    stmt = select(sub.c.bucket, sub.c.method, sub.c.grade, func.sum(sub.c.amount_fen)).group_by(
        sub.c.bucket, sub.c.method, sub.c.grade
    )
    return [
        RefundRow(bucket=int(r[0]), method=str(r[1]), grade=str(r[2]), amount_fen=int(r[3] or 0))
        for r in (await session.execute(stmt)).all()
    ]


async def unpaid_sales(
    session: AsyncSession, *, station_id: int, start: datetime, end: datetime
) -> Sequence[tuple[PumpSale, int]]:
    """Pump sales that ended in [start, end) and are still payable or locked, oldest first."""
    stmt = (
        select(PumpSale, FuellingPointRow.number)
        .join(FuellingPointRow, FuellingPointRow.id == PumpSale.fp_id)
        .where(
            PumpSale.station_id == station_id,
            PumpSale.status.in_(("payable", "locked")),
            PumpSale.ended_at >= start,
            PumpSale.ended_at < end,
        )
        .order_by(PumpSale.ended_at, PumpSale.id)
    )
    return [(row[0], int(row[1])) for row in (await session.execute(stmt)).all()]


async def station_orders(
    session: AsyncSession,
    *,
    station_id: int,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> Sequence[Order]:
    """A station's orders for export, newest first."""
    stmt = select(Order).where(Order.station_id == station_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if since is not None:
        stmt = stmt.where(Order.created_at >= since)
    if until is not None:
        stmt = stmt.where(Order.created_at < until)
    stmt = stmt.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    return (await session.scalars(stmt)).all()


async def reconciliations(
    session: AsyncSession, *, provider: str | None, bill_date: date | None
) -> Sequence[Reconciliation]:
    """Stored reconciliations (one provider and/or one day), newest day first."""
    stmt = select(Reconciliation)
    if provider is not None:
        stmt = stmt.where(Reconciliation.provider == provider)
    if bill_date is not None:
        stmt = stmt.where(Reconciliation.bill_date == bill_date)
    stmt = stmt.order_by(Reconciliation.bill_date.desc(), Reconciliation.provider)
    return (await session.scalars(stmt)).all()
