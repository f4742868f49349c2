"""All SQL of the payment area: payments, callbacks, refunds, reconciliation, idempotency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from forecourt.auth.models import Member
from forecourt.db import lock_row, upsert_insert
from forecourt.kit.prepared import Prepared
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


_PAYMENT_COLUMNS = tuple(column.key for column in Payment.__table__.columns)
ADD_PAYMENT = Prepared(insert(Payment).values({key: bindparam(key) for key in _PAYMENT_COLUMNS}))
PAYER_OPENID = Prepared(select(Member.openid).where(Member.id == bindparam("member_id")))


@dataclass(frozen=True, slots=True)
class PaidPayment:
    """A payment as its posting update left it."""

    id: str
    order_id: str
    member_id: int
    provider: str
    amount_fen: int
    refunded_fen: int


def _mark_paid(by_provider: bool) -> Prepared:
    stmt = (
        update(Payment)
        .where(
            Payment.id == bindparam("payment_id"),
            Payment.status.in_([literal("pending"), literal("closed")]),
            Payment.amount_fen == bindparam("expected_fen"),
        )
        .values(
            status="paid", transaction_id=bindparam("transaction_id"), paid_at=bindparam("paid_at")
        )
        .returning(
            Payment.id,
            Payment.order_id,
            Payment.member_id,
            Payment.provider,
            Payment.amount_fen,
            Payment.refunded_fen,
        )
    )
    return Prepared(
        stmt.where(Payment.provider == bindparam("from_provider")) if by_provider else stmt
    )


MARK_PAID = _mark_paid(by_provider=False)
MARK_PAID_BY_PROVIDER = _mark_paid(by_provider=True)


async def add_payment(session: AsyncSession, payment: Payment) -> Payment:
    """Insert a payment; every column is taken from it as set (no model default applies)."""
    await session.flush()  # what was pending is written first, as an ORM flush would
    await ADD_PAYMENT.run(session, **{key: getattr(payment, key) for key in _PAYMENT_COLUMNS})
    return payment


async def payer_openid(session: AsyncSession, member_id: int) -> str | None:
    """The member's WeChat openid (None for no member, or none stored)."""
    openid: str | None = await PAYER_OPENID.scalar(session, member_id=member_id)
    return openid


async def payment(session: AsyncSession, payment_id: str) -> Payment | None:
    """A payment by id (the merchant order number)."""
    return await session.get(Payment, payment_id)


async def reload_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    """A payment read again (a loaded copy is refreshed in place)."""
    return await session.get(Payment, payment_id, populate_existing=True)


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
) -> PaidPayment | None:
    """pending|closed -> paid for exactly this amount, once; the paid row for that call."""
    params: dict[str, Any] = {
        "payment_id": payment_id,
        "transaction_id": transaction_id,
        "paid_at": paid_at,
        "expected_fen": amount_fen,
    }
    if provider is None:
        row = await MARK_PAID.first(session, **params)
    else:
        row = await MARK_PAID_BY_PROVIDER.first(session, from_provider=provider, **params)
    return PaidPayment(*row) if row is not None else None


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


def _insert_or_nothing(
    table: type[Any], columns: Sequence[str], unique: list[str]
) -> Callable[[str], Executable]:
    """Build: insert `columns` (bound by name) unless `unique` is taken; the new row's id."""

    def build(dialect: str) -> Executable:
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt: Executable = (
            make(table)
            .values({key: bindparam(key) for key in columns})
            .on_conflict_do_nothing(index_elements=unique)
            .returning(table.id)
        )
        return stmt

    return build


RECORD_NOTIFICATION = Prepared(
    _insert_or_nothing(
        PaymentNotification,
        (
            "provider",
            "event_id",
            "kind",
            "out_trade_no",
            "out_refund_no",
            "transaction_id",
            "amount_fen",
            "succeeded",
            "outcome",
            "received_at",
        ),
        ["provider", "event_id"],
    )
)


async def record_notification(
    session: AsyncSession,
    *,
    provider: str,
    event_id: str,
    kind: str,
    out_trade_no: str,
    out_refund_no: str | None,
    transaction_id: str,
    amount_fen: int,
    succeeded: bool,
    outcome: str,
    received_at: datetime,
) -> bool:
    """Store a verified callback; False when the same provider event was stored before."""
    stored = await RECORD_NOTIFICATION.scalar(
        session,
        provider=provider,
        event_id=event_id,
        kind=kind,
        out_trade_no=out_trade_no,
        out_refund_no=out_refund_no,
        transaction_id=transaction_id,
        amount_fen=amount_fen,
        succeeded=succeeded,
        outcome=outcome,
        received_at=received_at,
    )
    return stored is not None


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


CLAIM_KEY = Prepared(
    _insert_or_nothing(
        IdempotencyRecord,
        ("subject", "route", "key", "request_hash", "status_code", "response", "created_at"),
        ["subject", "route", "key"],
    )
)
STORE_RESPONSE = Prepared(
    update(IdempotencyRecord)
    .where(
        IdempotencyRecord.subject == bindparam("for_subject"),
        IdempotencyRecord.route == bindparam("for_route"),
        IdempotencyRecord.key == bindparam("for_key"),
    )
    .values(status_code=bindparam("status_code"), response=bindparam("body"))
)


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    subject: str,
    route: str,
    key: str,
    request_hash: str,
    status_code: int,
    response: Any,
    created_at: datetime,
) -> bool:
    """Insert the key's record; False when another request holds it (waits for it on PG)."""
    claimed = await CLAIM_KEY.scalar(
        session,
        subject=subject,
        route=route,
        key=key,
        request_hash=request_hash,
        status_code=status_code,
        response=response,
        created_at=created_at,
    )
    return claimed is not None


async def store_idempotent_response(
    session: AsyncSession, *, subject: str, route: str, key: str, status_code: int, body: Any
) -> None:
    """Fill in the answer of a claimed key."""
    await STORE_RESPONSE.run(
        session,
        for_subject=subject,
        for_route=route,
        for_key=key,
        status_code=status_code,
        body=body,
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
