"""The points mall (R15): redeem for a pick-up code, cancel (points and stock back), pick up.

Locks are taken in one order everywhere: the member's loyalty account first, then the
redemption row; stock changes by a conditional update (`stock >= n`). So concurrent
redemptions of the last unit, or with the last points, leave exactly one winner.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import FieldError, Unprocessable
from forecourt.kit import clock
from forecourt.kit.scope import can_see_station, require_station
from forecourt.loyalty import mall_repository, points, service
from forecourt.loyalty.errors import (
    InsufficientPoints,
    ItemNotFound,
    LimitReached,
    OutOfStock,
    RedemptionClosed,
    RedemptionNotFound,
)
from forecourt.loyalty.mall_repository import OPEN
from forecourt.loyalty.models import MallItem, Redemption
from forecourt.station import repository as station_repository

CODE_DIGITS = 8


def business_month(moment: datetime) -> int:
    """yyyymm of the moment's business date."""
    local = clock.local(moment)
    return local.year * 100 + local.month


async def catalogue(session: AsyncSession) -> Sequence[MallItem]:
    """Active items in display order."""
    return await mall_repository.items(session, active_only=True)


async def active_item(session: AsyncSession, item_id: int) -> MallItem:
    """An active item (404 otherwise)."""
    item = await mall_repository.item(session, item_id)
    if item is None or not item.active:
        raise ItemNotFound(f"no mall item {item_id}")
    return item


async def update_item(
    session: AsyncSession, *, item_id: int, changes: dict[str, Any], now: datetime
) -> MallItem:
    """Set an item's stock, points, limit or visibility under its row lock."""
    row = await mall_repository.lock_item(session, item_id)
    if row is None:
        raise ItemNotFound(f"no mall item {item_id}")
    for name in ("stock", "points", "monthly_limit", "active"):
        if name in changes:
            setattr(row, name, changes[name])
    row.updated_at = now
    await session.flush()
    return row


async def _pickup_code(session: AsyncSession) -> str:
    for _ in range(5):
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if not await mall_repository.code_taken(session, code):
            return code
    raise RuntimeError("could not draw a free pick-up code")  # pragma: no cover


async def redeem(
    session: AsyncSession,
    *,
    member_id: int,
    item_id: int,
    quantity: int,
    station_id: int,
    pickup_days: int,
    now: datetime,
) -> Redemption:
    """Spend points on an item held for pick-up at a station; 409 for balance, stock, limit."""
    station = await station_repository.get(session, station_id)
    if station is None or station.status != "active":
        raise Unprocessable(
            "unknown station", errors=[FieldError("station_id", "no such active station")]
        )
    item = await active_item(session, item_id)
    cost = item.points * quantity
    account = await service.lock_account(session, member_id, now=now)
    month = business_month(now)
    used = await mall_repository.redeemed_in_month(
        session, member_id=member_id, item_id=item.id, month=month
    )
    if used + quantity > item.monthly_limit:
        raise LimitReached(
            f"{item.name}: at most {item.monthly_limit} per month, {used} redeemed",
            errors=[FieldError("quantity", f"at most {max(0, item.monthly_limit - used)}")],
        )
    move = points.debit(points.Kind.REDEEM, cost, balance=account.points_balance)
    if move is None:
        raise InsufficientPoints(
            f"{cost} points needed, {account.points_balance} available",
            errors=[FieldError("quantity", f"needs {cost} points")],
        )
    if not await mall_repository.take_stock(session, item_id=item.id, quantity=quantity, now=now):
        raise OutOfStock(f"{item.name} is out of stock")
    row = await mall_repository.add(
        session,
        Redemption(
            member_id=member_id,
            item_id=item.id,
            station_id=station_id,
            quantity=quantity,
            points=cost,
            status=OPEN,
            pickup_code=await _pickup_code(session),
            month=month,
            created_at=now,
            expires_at=now + timedelta(days=pickup_days),
            details={"name": item.name, "sku": item.sku, "station": station.name},
        ),
    )
    await service.post(
        session,
        account,
        [move],
        ref=f"redemption:{row.id}",
        now=now,
        reason=f"兑换 {item.name} ×{quantity}",
        actor=f"member:{member_id}",
    )
    return row


async def member_redemption(
    session: AsyncSession, *, member_id: int, redemption_id: int
) -> Redemption:
    """One of the member's redemptions (404 for anyone else's)."""
    row = await mall_repository.redemption(session, redemption_id)
    if row is None or row.member_id != member_id:
        raise RedemptionNotFound(f"no redemption {redemption_id}")
    return row


async def staff_redemption(
    session: AsyncSession, *, principal: Principal, redemption_id: int
) -> Redemption:
    """A redemption to be picked up at one of the caller's stations (404 otherwise)."""
    row = await mall_repository.redemption(session, redemption_id)
    if row is None or not can_see_station(principal, row.station_id):
        raise RedemptionNotFound(f"no redemption {redemption_id}")
    return row


async def cancel(
    session: AsyncSession, *, redemption: Redemption, actor: str, reason: str, now: datetime
) -> Redemption:
    """Cancel an open redemption: the stock and the points come back (once)."""
    account = await service.lock_account(session, redemption.member_id, now=now)
    row = await mall_repository.lock(session, redemption.id)
    assert row is not None
    if row.status != OPEN:
        raise RedemptionClosed(f"redemption {row.id} is {row.status}")
    row.status = "cancelled"
    row.cancelled_at, row.cancelled_by, row.cancel_reason = now, actor, reason[:100]
    await mall_repository.return_stock(session, item_id=row.item_id, quantity=row.quantity, now=now)
    await service.post(
        session,
        account,
        points.credit(points.Kind.REVERSE, row.points, debt=account.points_debt),
        ref=f"redemption:{row.id}",
        now=now,
        reason=f"取消兑换：{reason}"[:200],
        actor=actor,
    )
    return row


async def pick_up(
    session: AsyncSession, *, principal: Principal, station_id: int, code: str, now: datetime
) -> Redemption:
    """The attendant hands the item over against its code (their own stations only)."""
    require_station(principal, station_id)
    found = await mall_repository.by_code(session, code)
    if found is None or found.station_id != station_id:
        raise RedemptionNotFound("no redemption with this code at this station")
    row = await mall_repository.lock(session, found.id)
    assert row is not None
    if row.status != OPEN:
        raise RedemptionClosed(f"redemption {row.id} is {row.status}")
    if row.expires_at <= now:
        raise RedemptionClosed(f"redemption {row.id} passed its pick-up deadline")
    row.status = "picked_up"
    row.picked_up_at, row.picked_up_by = now, principal.subject
    await session.flush()
    return row


async def expire_overdue(session: AsyncSession, *, redemption_id: int, now: datetime) -> bool:
    """Cancel a redemption not picked up in time (safe twice)."""
    row = await mall_repository.redemption(session, redemption_id)
    if row is None or row.status != OPEN or row.expires_at > now:
        return False
    try:
        await cancel(session, redemption=row, actor="system", reason="逾期未领取", now=now)
    except RedemptionClosed:
        return False
    return True
