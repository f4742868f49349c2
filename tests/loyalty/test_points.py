"""Points for fuel orders: one earn per order, proportional reversal, debt, expiry (database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from forecourt.kit import clock
from forecourt.loyalty import service
from forecourt.loyalty.errors import InsufficientPoints, MemberNotFound
from forecourt.loyalty.models import Activity
from forecourt.runtime import Runtime
from tests.fixtures.auth import make_member
from tests.loyalty.conftest import (
    account,
    check_ledger,
    entries,
    fuel_order,
    give_points,
    refund,
    set_tier,
    settle,
    sync,
)


async def _activity(runtime: Runtime, member_id: int) -> tuple[int, int, int]:
    async with runtime.db.read_only() as session:
        rows = (
            await session.scalars(select(Activity).where(Activity.member_id == member_id))
        ).all()
        return (
            sum(r.visits for r in rows),
            sum(r.amount_fen for r in rows),
            sum(r.growth for r in rows),
        )


async def test_exactly_one_earn_with_the_tier_multiplier(runtime: Runtime) -> None:
    member = await make_member(runtime)
    await set_tier(runtime, member.id, "gold")
    order_id = await fuel_order(runtime, member_id=member.id, amount_fen=23_280)
    for trigger in ("paid", "paid", "settled"):
        await sync(runtime, order_id, trigger=trigger)
    rows = await entries(runtime, member.id)
    assert [(e.kind, e.points, e.multiplier_pct, e.basis_fen) for e in rows] == [
        ("earn", 349, 150, 23_280)
    ]
    assert (await check_ledger(runtime, member.id)).points_balance == 349
    assert await _activity(runtime, member.id) == (1, 23_280, 33)


async def test_refunds_reverse_in_proportion(runtime: Runtime) -> None:
    member = await make_member(runtime)
    order_id = await fuel_order(runtime, member_id=member.id, amount_fen=23_280)
    await sync(runtime, order_id)
    first = await refund(runtime, order_id, 11_640)
    await sync(runtime, order_id, trigger=first)
    await sync(runtime, order_id, trigger=first)  # a duplicate event changes nothing
    assert [(e.kind, e.points) for e in await entries(runtime, member.id)] == [
        ("earn", 232),
        ("reverse", -116),
    ]
    assert await _activity(runtime, member.id) == (1, 11_640, 21)
    await sync(runtime, order_id, trigger=await refund(runtime, order_id, 11_640))
    assert (await check_ledger(runtime, member.id)).points_balance == 0
    assert await _activity(runtime, member.id) == (0, 0, 0)


async def test_refund_after_spending_records_debt_never_a_negative_balance(
    runtime: Runtime,
) -> None:
    member = await make_member(runtime)
    order_id = await fuel_order(runtime, member_id=member.id, amount_fen=50_000)
    await sync(runtime, order_id)
    async with runtime.db.unit_of_work() as session:
        await service.adjust(
            session, member_id=member.id, delta=-450, reason="兑换", actor="test", now=clock.now()
        )
    await sync(runtime, order_id, trigger=await refund(runtime, order_id, 50_000))
    row = await check_ledger(runtime, member.id)
    assert (row.points_balance, row.points_debt) == (0, 450)
    # The next earn pays the debt first.
    second = await fuel_order(runtime, member_id=member.id, amount_fen=60_000)
    await sync(runtime, second)
    row = await check_ledger(runtime, member.id)
    assert (row.points_balance, row.points_debt) == (150, 0)
    assert [(e.kind, e.points, e.debt) for e in await entries(runtime, member.id)][-2:] == [
        ("earn", 600, 0),
        ("reverse", -450, -450),
    ]


async def test_events_in_any_order_end_the_same(runtime: Runtime) -> None:
    member = await make_member(runtime)
    order_id = await fuel_order(runtime, member_id=member.id, amount_fen=30_000)
    refund_id = await refund(runtime, order_id, 10_000)
    await sync(runtime, order_id, trigger=refund_id)  # the refund's event comes first
    await sync(runtime, order_id, trigger="paid")
    assert [(e.kind, e.points, e.basis_fen) for e in await entries(runtime, member.id)] == [
        ("earn", 200, 20_000)
    ]


async def test_pay_at_pump_earns_when_settled_and_top_ups_never(runtime: Runtime) -> None:
    member = await make_member(runtime)
    order_id = await fuel_order(
        runtime, member_id=member.id, amount_fen=30_000, kind="prepay", settled_fen=None
    )
    await sync(runtime, order_id, trigger="paid")
    assert await entries(runtime, member.id) == []
    await settle(runtime, order_id, 24_055)
    await sync(runtime, order_id, trigger="settled")
    settlement = await refund(runtime, order_id, 5_945, kind="settlement")
    await sync(runtime, order_id, trigger=settlement)  # inside settled_fen already
    assert [(e.kind, e.points) for e in await entries(runtime, member.id)] == [("earn", 240)]
    topup = await fuel_order(runtime, member_id=member.id, amount_fen=50_000, kind="topup")
    await sync(runtime, topup)
    assert len(await entries(runtime, member.id)) == 1


async def test_expiry_takes_only_lapsed_lots_oldest_first(runtime: Runtime) -> None:
    member = await make_member(runtime)
    old_day = datetime(2025, 5, 1, 2, 0, tzinfo=UTC)
    old = await fuel_order(runtime, member_id=member.id, amount_fen=40_000, paid_at=old_day)
    await sync(runtime, old, now=old_day)  # 400 points, expire end of 2026
    new_day = datetime(2026, 8, 1, 2, 0, tzinfo=UTC)
    new = await fuel_order(runtime, member_id=member.id, amount_fen=30_000, paid_at=new_day)
    await sync(runtime, new, now=new_day)  # 300 points, expire end of 2027
    async with runtime.db.unit_of_work() as session:
        await service.adjust(
            session, member_id=member.id, delta=-250, reason="兑换", actor="test", now=new_day
        )
    new_year = datetime(2026, 12, 31, 16, 0, 1, tzinfo=UTC)  # 2027-01-01 00:00:01 Shanghai
    for _ in range(2):  # twice: the second run finds nothing
        async with runtime.db.unit_of_work() as session:
            await service.expire_member(session, member_id=member.id, now=new_year)
    row = await check_ledger(runtime, member.id)
    assert row.points_balance == 300  # the 150 left of the old lot expired, the new lot kept
    assert [(e.kind, e.points) for e in await entries(runtime, member.id)][-1] == ("expire", -150)
    async with runtime.db.unit_of_work() as session:
        later = new_year + timedelta(days=366)
        assert await service.expire_member(session, member_id=member.id, now=later) == 300


async def test_adjust_needs_a_member_and_cannot_overdraw(runtime: Runtime) -> None:
    member = await make_member(runtime)
    await give_points(runtime, member.id, 100)
    with pytest.raises(InsufficientPoints):
        async with runtime.db.unit_of_work() as session:
            await service.adjust(
                session, member_id=member.id, delta=-101, reason="x", actor="t", now=clock.now()
            )
    with pytest.raises(MemberNotFound):
        async with runtime.db.unit_of_work() as session:
            await service.adjust(
                session, member_id=member.id + 999, delta=5, reason="x", actor="t", now=clock.now()
            )
    assert (await account(runtime, member.id)).points_balance == 100
