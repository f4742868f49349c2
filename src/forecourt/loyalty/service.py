"""Loyalty rules with the database: points for fuel orders, adjustments, shares, expiry, cards.

Points and growth of a fuel order are *recomputed* from the order whenever something about
it happens (paid, settled, refunded): the amount kept is the settled amount less succeeded
customer refunds, and the order's entries are brought to what that amount is worth. So the
events may arrive in any order, twice, or late, and the result is the same: exactly one
earn per order, reversals in proportion to refunds, never a negative balance.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.errors import FieldError
from forecourt.loyalty import domain, points, pricing, repository
from forecourt.loyalty.errors import InsufficientPoints, MemberNotFound
from forecourt.loyalty.models import LoyaltyAccount, PointsEntry
from forecourt.order import repository as order_repository
from forecourt.order.domain import Kind as OrderKind
from forecourt.order.models import Order
from forecourt.payment import repository as payment_repository

KEPT_REFUND_KINDS = frozenset({"customer"})  # settlement is inside settled_fen already


async def lock_account(session: AsyncSession, member_id: int, *, now: datetime) -> LoyaltyAccount:
    """The member's account under a row lock (created at the entry tier on first use)."""
    tiers = await pricing.ladder(session)
    return await repository.lock_account(session, member_id, base_tier=tiers.base.code, now=now)


async def post(
    session: AsyncSession,
    account: LoyaltyAccount,
    moves: list[points.Move],
    *,
    ref: str,
    now: datetime,
    order_id: str | None = None,
    multiplier_pct: int | None = None,
    basis_fen: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> PointsEntry:
    """Append moves to a locked account: the first carries `ref`, a debt payment follows it."""
    first: PointsEntry | None = None
    for move in moves:
        is_first = first is None
        row = await repository.append(
            session,
            account,
            move,
            ref=ref if is_first else f"debt:{move.kind}:{ref}"[:64],
            now=now,
            order_id=order_id,
            expires_at=points.lot_expiry(now) if move.points > 0 else None,
            multiplier_pct=multiplier_pct if is_first else None,
            basis_fen=basis_fen if is_first else None,
            reason=reason if is_first else "偿还积分欠款",
            actor=actor,
        )
        first = first or row
    assert first is not None
    return first


async def _kept_fen(session: AsyncSession, order: Order) -> int:
    """What the driver finally paid for the fuel: settled less succeeded customer refunds."""
    if order.settled_fen is None:
        return 0
    refunds = await payment_repository.refunds_of(session, order.id)
    back = sum(
        r.amount_fen for r in refunds if r.status == "succeeded" and r.kind in KEPT_REFUND_KINDS
    )
    return max(0, order.settled_fen - back)


async def sync_order(session: AsyncSession, *, order_id: str, trigger: str, now: datetime) -> None:
    """Bring a fuel order's points and growth to what the amount kept is worth (idempotent)."""
    order = await order_repository.get(session, order_id)
    if order is None or order.kind == OrderKind.TOPUP.value:
        return
    account = await lock_account(session, order.member_id, now=now)
    kept = await _kept_fen(session, order)
    await _sync_points(session, account, order, kept=kept, trigger=trigger, now=now)
    await _sync_activity(session, order, kept=kept, now=now)


async def _sync_points(
    session: AsyncSession,
    account: LoyaltyAccount,
    order: Order,
    *,
    kept: int,
    trigger: str,
    now: datetime,
) -> None:
    rows = await repository.order_entries(session, member_id=account.member_id, order_id=order.id)
    earn = next((r for r in rows if r.kind == points.Kind.EARN.value), None)
    if earn is None:
        tiers = await pricing.ladder(session)
        multiplier = tiers.get(account.tier_code).points_multiplier_pct
        target = points.points_for(kept, multiplier)
        if target > 0:
            await post(
                session,
                account,
                points.credit(points.Kind.EARN, target, debt=account.points_debt),
                ref=order.id,
                now=now,
                order_id=order.id,
                multiplier_pct=multiplier,
                basis_fen=kept,
                reason=f"加油订单 {order.id}",
                actor="system",
            )
        return
    target = points.points_for(kept, earn.multiplier_pct or 100)
    held = sum(r.points - r.debt for r in rows)  # earned less everything reversed (taken + debt)
    if held > target:
        await post(
            session,
            account,
            [points.reverse(held - target, balance=account.points_balance)],
            ref=f"{order.id}#{len(rows)}",
            now=now,
            order_id=order.id,
            reason=f"退款冲回 {trigger}"[:200],
            actor="system",
        )


async def _sync_activity(session: AsyncSession, order: Order, *, kept: int, now: datetime) -> None:
    rows = await repository.order_activity(session, order.id)
    want = (1 if kept > 0 else 0, kept, domain.visit_growth(kept))
    have = (
        sum(r.visits for r in rows),
        sum(r.amount_fen for r in rows),
        sum(r.growth for r in rows),
    )
    if want == have:
        return
    day = rows[0].day if rows else domain.business_day(order.paid_at or now)
    await repository.add_activity(
        session,
        member_id=order.member_id,
        kind="refund" if rows else "visit",
        ref=f"{order.id}#{len(rows)}" if rows else order.id,
        order_id=order.id,
        day=day,
        visits=want[0] - have[0],
        amount_fen=want[1] - have[1],
        growth=want[2] - have[2],
        created_at=now,
    )


async def adjust(
    session: AsyncSession, *, member_id: int, delta: int, reason: str, actor: str, now: datetime
) -> PointsEntry:
    """Back-office correction with a reason (audited: who, when, why); never below zero."""
    if await repository.member(session, member_id) is None:
        raise MemberNotFound(f"no member {member_id}")
    account = await lock_account(session, member_id, now=now)
    ref = f"adj:{secrets.token_hex(8)}"
    if delta > 0:
        moves = points.credit(points.Kind.ADJUST, delta, debt=account.points_debt)
    else:
        move = points.debit(points.Kind.ADJUST, -delta, balance=account.points_balance)
        if move is None:
            raise InsufficientPoints(
                f"balance {account.points_balance} points, cannot deduct {-delta}",
                errors=[FieldError("points", f"at most {account.points_balance} can be deducted")],
            )
        moves = [move]
    return await post(session, account, moves, ref=ref, now=now, reason=reason, actor=actor)


@dataclass(frozen=True, slots=True)
class ShareResult:
    """Whether a share counted towards growth, and how many counted today."""

    counted: bool
    growth: int
    shares_today: int


async def record_share(
    session: AsyncSession, *, member_id: int, channel: str, daily_cap: int, now: datetime
) -> ShareResult:
    """A share from the app: growth for the first `daily_cap` shares of a business day."""
    await lock_account(session, member_id, now=now)  # serialises a member's shares
    day = domain.business_day(now)
    count = await repository.shares_on(session, member_id=member_id, day=day)
    if count >= daily_cap:
        return ShareResult(counted=False, growth=0, shares_today=count)
    await repository.add_activity(
        session,
        member_id=member_id,
        kind="share",
        ref=f"{member_id}:{day}:{count + 1}:{channel}"[:64],
        day=day,
        visits=0,
        amount_fen=0,
        growth=domain.SHARE_GROWTH,
        created_at=now,
    )
    return ShareResult(counted=True, growth=domain.SHARE_GROWTH, shares_today=count + 1)


async def expire_member(session: AsyncSession, *, member_id: int, now: datetime) -> int:
    """Expire the member's lots past their date, oldest first; returns the points expired."""
    account = await lock_account(session, member_id, now=now)
    old, taken = await repository.expiry_totals(session, member_id=member_id, at=now)
    due = min(points.expired_due(credits_past_date=old, debits_total=taken), account.points_balance)
    if due <= 0:
        return 0
    move = points.debit(points.Kind.EXPIRE, due, balance=account.points_balance)
    assert move is not None
    await post(
        session, account, [move], ref=f"expire:{now.isoformat()}", now=now, reason="积分到期"
    )
    return due


@dataclass(frozen=True, slots=True)
class Standing:
    """A member's tier, growth and points as the card shows them."""

    account: LoyaltyAccount | None
    tier: domain.Tier
    next_tier: domain.Tier | None
    growth: int
    visits: int
    spend_fen: int
    expiring_points: int
    expiring_at: datetime | None


async def standing(
    session: AsyncSession, *, member_id: int, window_days: int, now: datetime
) -> Standing:
    """The member card's facts (read only; no account is created)."""
    tiers = await pricing.ladder(session)
    account = await repository.account(session, member_id)
    tier = tiers.get(account.tier_code if account else None)
    since = domain.window_start_day(now, window_days)
    visits, spend, growth, _ = await repository.member_totals(
        session, member_id=member_id, since_day=since
    )
    expiring, expiring_at = 0, None
    if account is not None and account.points_balance > 0:
        expiring_at = await repository.next_lot_expiry(session, member_id=member_id, now=now)
        if expiring_at is not None:
            old, taken = await repository.expiry_totals(
                session, member_id=member_id, at=expiring_at
            )
            expiring = points.expired_due(credits_past_date=old, debits_total=taken)
    return Standing(
        account=account,
        tier=tier,
        next_tier=tiers.next_above(tier.code),
        growth=growth,
        visits=visits,
        spend_fen=spend,
        expiring_points=expiring,
        expiring_at=expiring_at,
    )
