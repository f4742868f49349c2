"""All SQL of the payment area: payments, callbacks, refunds, reconciliation, idempotency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import lock_row, upsert_insert
from forecourt.payment.models import (
    IdempotencyRecord,
    Payment,
    PaymentNotification,
    Reconciliation,
    Refund,
)


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


# -- payments ------------------------------------------------------------------------------


async def add_payment(session: AsyncSession, payment: Payment) -> Payment:
    """Insert a payment."""
    session.add(payment)
    await session.flush()
    return payment


async def payment(session: AsyncSession, payment_id: str) -> Payment | None:
    """A payment by id (the merchant order number)."""
    return await session.get(Payment, payment_id)


async def lock_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    """A payment under a row lock."""
    row: Payment | None = await lock_row(session, Payment, payment_id)
    return row


async def payments_of(session: AsyncSession, order_id: str) -> Sequence[Payment]:
    """An order's payments, oldest first."""
    stmt = select(Payment).where(Payment.order_id == order_id).order_by(Payment.created_at)
    return (await session.scalars(stmt)).all()


async def mark_paid(
    session: AsyncSession,
    *,
    payment_id: str,
    transaction_id: str,
    paid_at: datetime,
    amount_fen: int,
    provider: str | None = None,
) -> Payment | None:
    """pending|closed -> paid for exactly this amount, once; the paid row for that call."""
    stmt = (
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status.in_(("pending", "closed")),
            Payment.amount_fen == amount_fen,
        )
        .values(status="paid", transaction_id=transaction_id, paid_at=paid_at)
        .returning(Payment)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if provider is not None:
        stmt = stmt.where(Payment.provider == provider)
    return (await session.scalars(stmt)).first()


async def mark_closed(session: AsyncSession, *, payment_id: str, now: datetime) -> bool:
    """pending -> closed; True when it changed."""
    stmt = (
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == "pending")
        .values(status="closed", closed_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(await session.execute(stmt)) == 1


async def add_refunded(session: AsyncSession, *, payment_id: str, amount_fen: int) -> bool:
    """Count a refund against a payment unless it would exceed the amount paid."""
    stmt = (
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status == "paid",
            Payment.refunded_fen + amount_fen <= Payment.amount_fen,
        )
        .values(refunded_fen=Payment.refunded_fen + amount_fen)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(await session.execute(stmt)) == 1


async def stale_pending(
    session: AsyncSession, *, created_before: datetime, queried_before: datetime, limit: int
) -> Sequence[Payment]:
    """Pending external payments to ask the provider about."""
    stmt = (
        select(Payment)
        .where(
            Payment.status == "pending",
            Payment.provider != "wallet",
            Payment.created_at <= created_before,
            (Payment.queried_at.is_(None)) | (Payment.queried_at <= queried_before),
        )
        .order_by(Payment.created_at)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def touch_queried(session: AsyncSession, *, payment_id: str, now: datetime) -> None:
    """Remember when a payment was last queried."""
    await session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(queried_at=now)
        .execution_options(synchronize_session=False)
    )


async def paid_between(
    session: AsyncSession, *, provider: str, start: datetime, end: datetime
) -> Sequence[Payment]:
    """Payments of a provider paid in [start, end)."""
    stmt = select(Payment).where(
        Payment.provider == provider,
        Payment.status == "paid",
        Payment.paid_at >= start,
        Payment.paid_at < end,
    )
    return (await session.scalars(stmt)).all()


# -- notifications -------------------------------------------------------------------------


async def record_notification(session: AsyncSession, **values: Any) -> bool:
    """Store a verified callback; False when the same provider event was stored before."""
    stmt = (
        upsert_insert(session, PaymentNotification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(PaymentNotification.id)
    )
    return (await session.scalar(stmt)) is not None


async def unmatched_notifications(
    session: AsyncSession, *, provider: str, start: datetime, end: datetime
) -> Sequence[PaymentNotification]:
    """Callbacks for orders we do not know, received in [start, end)."""
    stmt = select(PaymentNotification).where(
        PaymentNotification.provider == provider,
        PaymentNotification.outcome == "unknown_order",
        PaymentNotification.received_at >= start,
        PaymentNotification.received_at < end,
    )
    return (await session.scalars(stmt)).all()


# -- refunds -------------------------------------------------------------------------------


async def add_refund(session: AsyncSession, refund: Refund) -> Refund:
    """Insert a refund."""
    session.add(refund)
    await session.flush()
    return refund


async def refund(session: AsyncSession, refund_id: str) -> Refund | None:
    """A refund by id."""
    return await session.get(Refund, refund_id)


async def lock_refund(session: AsyncSession, refund_id: str) -> Refund | None:
    """A refund under a row lock."""
    row: Refund | None = await lock_row(session, Refund, refund_id)
    return row


async def refunds_of(session: AsyncSession, order_id: str) -> Sequence[Refund]:
    """An order's refunds, oldest first."""
    stmt = select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)
    return (await session.scalars(stmt)).all()


async def open_refund_total(session: AsyncSession, payment_id: str) -> int:
    """Refunds of a payment awaiting approval (not yet counted on the payment)."""
    stmt = select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
        Refund.payment_id == payment_id, Refund.status == "pending_approval"
    )
    return int(await session.scalar(stmt) or 0)


async def refunds_in_progress(session: AsyncSession, *, limit: int) -> Sequence[Refund]:
    """Refunds sent to a provider and not yet confirmed."""
    stmt = select(Refund).where(Refund.status == "processing").order_by(Refund.created_at)
    return (await session.scalars(stmt.limit(limit))).all()


async def refunded_between(
    session: AsyncSession, *, provider: str, start: datetime, end: datetime
) -> Sequence[Refund]:
    """Refunds of a provider completed in [start, end)."""
    stmt = select(Refund).where(
        Refund.provider == provider,
        Refund.status == "succeeded",
        Refund.completed_at >= start,
        Refund.completed_at < end,
    )
    return (await session.scalars(stmt)).all()


# -- reconciliation ------------------------------------------------------------------------


async def save_reconciliation(session: AsyncSession, **values: Any) -> Reconciliation:
    """Insert or replace the reconciliation of one provider and day."""
    stmt = (
        upsert_insert(session, Reconciliation)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["provider", "bill_date"],
            set_={k: v for k, v in values.items() if k not in ("provider", "bill_date")},
        )
        .returning(Reconciliation)
        .execution_options(populate_existing=True)
    )
    row: Reconciliation = (await session.scalars(stmt)).one()
    return row


async def reconciliations(
    session: AsyncSession, *, provider: str | None, since: date | None, limit: int
) -> Sequence[Reconciliation]:
    """Stored reconciliations, newest day first."""
    stmt = select(Reconciliation)
    if provider is not None:
        stmt = stmt.where(Reconciliation.provider == provider)
    if since is not None:
        stmt = stmt.where(Reconciliation.bill_date >= since)
    stmt = stmt.order_by(Reconciliation.bill_date.desc(), Reconciliation.provider).limit(limit)
    return (await session.scalars(stmt)).all()


# -- idempotency ---------------------------------------------------------------------------


async def idempotency_record(
    session: AsyncSession, *, subject: str, route: str, key: str
) -> IdempotencyRecord | None:
    """The stored answer for a key."""
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.subject == subject,
        IdempotencyRecord.route == route,
        IdempotencyRecord.key == key,
    )
    return (await session.scalars(stmt)).first()


async def claim_idempotency_key(session: AsyncSession, **values: Any) -> bool:
    """Insert the key's record; False when another request holds it (waits for it on PG)."""
    stmt = (
        upsert_insert(session, IdempotencyRecord)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["subject", "route", "key"])
        .returning(IdempotencyRecord.id)
    )
    return (await session.scalar(stmt)) is not None


async def store_idempotent_response(
    session: AsyncSession, *, subject: str, route: str, key: str, status_code: int, body: Any
) -> None:
    """Fill in the answer of a claimed key."""
    await session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.subject == subject,
            IdempotencyRecord.route == route,
            IdempotencyRecord.key == key,
        )
        .values(status_code=status_code, response=body)
        .execution_options(synchronize_session=False)
    )


async def refundable_topups(session: AsyncSession, member_id: int) -> Sequence[Payment]:
    """A member's paid top-up payments with money left to refund, newest first."""
    from forecourt.order.models import Order

    stmt = (
        select(Payment)
        .join(Order, Order.id == Payment.order_id)
        .where(
            Payment.member_id == member_id,
            Payment.status == "paid",
            Payment.provider != "wallet",
            Order.kind == "topup",
            Payment.refunded_fen < Payment.amount_fen,
        )
        .order_by(Payment.paid_at.desc())
    )
    return (await session.scalars(stmt)).all()
