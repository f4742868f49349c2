"""The real ledger (service + row-locked repository) driven by Hypothesis-generated histories.

Each example is a fresh member and a random history of fuel orders, refunds, redemptions,
adjustments, passing years and expiry runs, applied through the production code on SQLite
and PostgreSQL. After every step the stored ledger must be whole (balance = sum of entries,
running totals right, never negative) and equal to the first-in first-out lot model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecourt.loyalty import points, service
from forecourt.loyalty.errors import InsufficientPoints
from forecourt.runtime import Runtime
from tests.fixtures.auth import make_member
from tests.loyalty.conftest import check_ledger, fuel_order, refund, sync
from tests.loyalty.model import LotModel

START = datetime(2025, 2, 1, 2, 0, tzinfo=UTC)
Step = tuple[str, int]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(100, 80_000)),
        st.tuples(st.just("refund"), st.integers(1, 100)),  # percent of what is left
        st.tuples(st.just("spend"), st.integers(1, 600)),
        st.tuples(st.just("give"), st.integers(1, 300)),
        st.tuples(st.just("years"), st.integers(1, 500)),  # days pass
        st.tuples(st.just("expire"), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
async def test_ledger_histories(runtime: Runtime, steps: list[Step]) -> None:
    member = await make_member(runtime)
    model, now = LotModel(), START
    orders: list[tuple[str, int, int]] = []  # (order id, amount kept, points held)
    for action, value in steps:
        if action == "order":
            order_id = await fuel_order(runtime, member_id=member.id, amount_fen=value, paid_at=now)
            await sync(runtime, order_id, now=now)
            earned = points.points_for(value, 100)
            if earned:
                model.credit(earned, now)
            orders.append((order_id, value, earned))
        elif action == "refund" and orders:
            order_id, kept, held = orders[-1]
            amount = max(1, kept * value // 100)
            if amount <= kept:
                await sync(
                    runtime, order_id, trigger=await refund(runtime, order_id, amount), now=now
                )
                target = points.points_for(kept - amount, 100)
                if held > target:
                    model.reverse(held - target)
                orders[-1] = (order_id, kept - amount, target)
        elif action in ("spend", "give"):
            delta = -value if action == "spend" else value
            try:
                async with runtime.db.unit_of_work() as session:
                    await service.adjust(
                        session, member_id=member.id, delta=delta, reason="t", actor="t", now=now
                    )
            except InsufficientPoints:
                assert value > model.balance
            else:
                model.take(value) if delta < 0 else model.credit(value, now)
        elif action == "years":
            now += timedelta(days=value)
        elif action == "expire":
            async with runtime.db.unit_of_work() as session:
                gone = await service.expire_member(session, member_id=member.id, now=now)
            assert gone == model.expire(now), "expiry must take the oldest lapsed lots only"
        if orders or action in ("give", "spend", "expire"):
            row = await check_ledger(runtime, member.id)
            assert (row.points_balance, row.points_debt) == (model.balance, model.debt)
