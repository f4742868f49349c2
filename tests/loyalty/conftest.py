"""Helpers for loyalty tests: fuel orders with payments and refunds, tiers, points."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import select, update

from forecourt.kit import clock
from forecourt.loyalty import repository, service
from forecourt.loyalty.models import LoyaltyAccount, PointsEntry
from forecourt.order.models import Order
from forecourt.payment.models import Payment, Refund
from forecourt.runtime import Runtime

_seq = itertools.count(1)


def serial(prefix: str) -> str:
    """A unique 32-character id."""
    return f"{prefix}{next(_seq):0{32 - len(prefix)}d}"


async def fuel_order(
    runtime: Runtime,
    *,
    member_id: int,
    amount_fen: int,
    kind: str = "postpay",
    settled_fen: int | None = -1,
    paid_at: datetime | None = None,
) -> str:
    """A paid fuel order (settled on its amount unless told otherwise) and its payment."""
    now = paid_at or clock.now()
    order_id, payment_id = serial("O"), serial("P")
    async with runtime.db.unit_of_work() as session:
        session.add(
            Order(
                id=order_id,
                member_id=member_id,
                kind=kind,
                status="completed" if settled_fen is not None else "fuelling",
                grade_code="92",
                unit_price_fen=776,
                list_fen=amount_fen,
                discount_fen=0,
                payable_fen=amount_fen,
                paid_fen=amount_fen,
                settled_fen=amount_fen if settled_fen == -1 else settled_fen,
                refunded_fen=0,
                bonus_fen=0,
                lines=[],
                provider="wechatpay",
                created_at=now,
                expires_at=now + timedelta(minutes=15),
                paid_at=now,
            )
        )
        await session.flush()
        session.add(
            Payment(
                id=payment_id,
                order_id=order_id,
                member_id=member_id,
                provider="wechatpay",
                status="paid",
                amount_fen=amount_fen,
                refunded_fen=0,
                client_params={},
                created_at=now,
                expires_at=now + timedelta(minutes=15),
                paid_at=now,
            )
        )
    return order_id


async def settle(runtime: Runtime, order_id: str, settled_fen: int) -> None:
    """A pay-at-pump order settles."""
    async with runtime.db.unit_of_work() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(settled_fen=settled_fen)
        )


async def refund(
    runtime: Runtime, order_id: str, amount_fen: int, *, kind: str = "customer"
) -> str:
    """A succeeded refund of the order's payment."""
    refund_id = serial("R")
    async with runtime.db.unit_of_work() as session:
        payment = (await session.scalars(select(Payment).where(Payment.order_id == order_id))).one()
        session.add(
            Refund(
                id=refund_id,
                order_id=order_id,
                payment_id=payment.id,
                provider=payment.provider,
                kind=kind,
                status="succeeded",
                amount_fen=amount_fen,
                reason="test",
                requested_by="system",
                created_at=clock.now(),
                completed_at=clock.now(),
            )
        )
    return refund_id


async def sync(
    runtime: Runtime, order_id: str, *, trigger: str = "test", now: datetime | None = None
) -> None:
    """Run the points sync of an order in its own unit of work."""
    async with runtime.db.unit_of_work() as session:
        await service.sync_order(
            session, order_id=order_id, trigger=trigger, now=now or clock.now()
        )


async def set_tier(runtime: Runtime, member_id: int, code: str) -> None:
    """Put a member on a tier."""
    async with runtime.db.unit_of_work() as session:
        account = await service.lock_account(session, member_id, now=clock.now())
        account.tier_code = code


async def give_points(runtime: Runtime, member_id: int, amount: int) -> None:
    """Credit points through a back-office adjustment."""
    async with runtime.db.unit_of_work() as session:
        await service.adjust(
            session, member_id=member_id, delta=amount, reason="test", actor="test", now=clock.now()
        )


async def account(runtime: Runtime, member_id: int) -> LoyaltyAccount:
    """The member's account, detached."""
    async with runtime.db.read_only() as session:
        row = await repository.account(session, member_id)
        if row is None:  # never used: an empty account
            return LoyaltyAccount(member_id=member_id, points_balance=0, points_debt=0)
        session.expunge(row)
        return row


async def entries(runtime: Runtime, member_id: int) -> list[PointsEntry]:
    """The member's ledger, oldest first, detached."""
    async with runtime.db.read_only() as session:
        stmt = (
            select(PointsEntry).where(PointsEntry.member_id == member_id).order_by(PointsEntry.id)
        )
        rows = list((await session.scalars(stmt)).all())
        session.expunge_all()
        return rows


async def check_ledger(runtime: Runtime, member_id: int) -> LoyaltyAccount:
    """The ledger is whole: sums equal the account, running totals add up, nothing negative."""
    row = await account(runtime, member_id)
    running_points = running_debt = 0
    for entry in await entries(runtime, member_id):
        running_points += entry.points
        running_debt += entry.debt
        assert (entry.balance_after, entry.debt_after) == (running_points, running_debt)
        assert running_points >= 0
        assert running_debt >= 0
    assert (row.points_balance, row.points_debt) == (running_points, running_debt)
    return row
