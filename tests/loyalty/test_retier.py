"""Nightly re-tiering on a fixed dataset: exact RFM scores and tiers, grace, history, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from forecourt.loyalty import domain, repository, retier
from forecourt.loyalty.models import Activity, LoyaltyAccount, TierChange
from forecourt.outbox.models import OutboxEvent
from forecourt.runtime import Runtime
from tests.fixtures.auth import make_member

NOW = datetime(2026, 6, 30, 2, 0, tzinfo=UTC)
GRACE = 30
# name: (visits, fen per visit, days since the last visit, shares, tier now, grace until)
DATASET: dict[str, tuple[int, int, int, int, str, datetime | None]] = {
    "A": (30, 40_000, 1, 100, "standard", None),
    "B": (20, 30_000, 3, 0, "standard", None),
    "C": (12, 25_000, 10, 0, "gold", None),
    "D": (8, 20_000, 20, 0, "standard", None),
    "K": (8, 20_000, 20, 0, "diamond", NOW - timedelta(days=1)),  # grace over
    "E": (6, 15_000, 40, 0, "silver", None),
    "F": (4, 10_000, 60, 0, "standard", None),
    "G": (3, 8_000, 90, 0, "standard", None),
    "H": (2, 5_000, 150, 0, "standard", None),
    "I": (1, 3_000, 200, 0, "standard", None),
    "J": (0, 0, 0, 0, "gold", None),  # nothing in the window
}


async def _load(runtime: Runtime) -> dict[str, int]:
    ids: dict[str, int] = {}
    today = domain.business_day(NOW)
    rows: list[dict[str, Any]] = []
    async with runtime.db.unit_of_work() as session:
        for name, (visits, fen, last, shares, tier, grace) in DATASET.items():
            member = await make_member(runtime)
            ids[name] = member.id
            session.add(
                LoyaltyAccount(
                    member_id=member.id,
                    tier_code=tier,
                    tier_since=NOW - timedelta(days=400),
                    grace_until=grace,
                    points_balance=0,
                    points_debt=0,
                    updated_at=NOW,
                )
            )
            for i in range(visits):
                rows.append(
                    {
                        "member_id": member.id,
                        "kind": "visit",
                        "ref": f"{name}-v{i}",
                        "order_id": f"{name}-v{i}",
                        "day": today - last - i,
                        "visits": 1,
                        "amount_fen": fen,
                        "growth": domain.visit_growth(fen),
                        "created_at": NOW,
                    }
                )
            for i in range(shares):
                rows.append(
                    {
                        "member_id": member.id,
                        "kind": "share",
                        "ref": f"{name}-s{i}",
                        "day": today - i // 3,
                        "visits": 0,
                        "amount_fen": 0,
                        "growth": domain.SHARE_GROWTH,
                        "created_at": NOW,
                    }
                )
        await session.flush()
        await session.execute(insert(Activity), rows)
    return ids


async def _tiers(runtime: Runtime, ids: dict[str, int]) -> dict[str, tuple[str, datetime | None]]:
    async with runtime.db.read_only() as session:
        accounts = {
            a.member_id: (a.tier_code, a.grace_until)
            for a in await session.scalars(select(LoyaltyAccount))
        }
    return {name: accounts[i] for name, i in ids.items()}


async def _run(runtime: Runtime, now: datetime) -> retier.RetierResult:
    phases: list[tuple[str, int]] = []
    result = await retier.retier(
        runtime.db,
        now=now,
        window_days=365,
        grace_days=GRACE,
        batch=3,
        progress=lambda phase, done: phases.append((phase, done)),
    )
    assert [p for p, _ in phases].count("read") == -(-result.members // 3)
    return result


async def test_fixed_dataset_gets_exact_tiers(runtime: Runtime) -> None:
    ids = await _load(runtime)
    result = await _run(runtime, NOW)
    assert (result.members, result.active) == (11, 10)
    assert await _tiers(runtime, ids) == {
        "A": ("diamond", None),  # growth 1500 + 500 shared = 2000, RFM 5-5-5
        "B": ("gold", None),  # growth 800, RFM 15: below diamond's growth
        "C": ("gold", NOW + timedelta(days=GRACE)),  # qualifies for silver: grace starts
        "D": ("silver", None),  # growth 240, RFM 4-4-4
        "K": ("silver", None),  # diamond whose grace was over: down to what it qualifies for
        "E": ("silver", NOW + timedelta(days=GRACE)),  # growth 150 < 200: grace starts
        "F": ("standard", None),
        "G": ("standard", None),
        "H": ("standard", None),
        "I": ("standard", None),
        "J": ("gold", NOW + timedelta(days=GRACE)),
    }
    assert (result.upgrades, result.downgrades, result.graces_started) == (3, 1, 3)
    async with runtime.db.read_only() as session:
        history = {
            (h.member_id, h.from_tier, h.to_tier, h.reason, h.growth, h.rfm)
            for h in await session.scalars(select(TierChange))
        }
        payloads = list(
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.topic == retier.TIERS_CHANGED)
            )
        )
    assert history == {
        (ids["A"], "standard", "diamond", "upgrade", 2000, "5-5-5"),
        (ids["B"], "standard", "gold", "upgrade", 800, "5-5-5"),
        (ids["D"], "standard", "silver", "upgrade", 240, "4-4-4"),
        (ids["K"], "diamond", "silver", "downgrade", 240, "4-4-4"),
    }
    changes = [c for payload in payloads for c in payload["changes"]]
    assert sorted((c["member_id"], c["outcome"]) for c in changes) == sorted(
        [
            (ids["A"], "upgrade"),
            (ids["B"], "upgrade"),
            (ids["D"], "upgrade"),
            (ids["K"], "downgrade"),
            (ids["C"], "grace"),
            (ids["E"], "grace"),
            (ids["J"], "grace"),
        ]
    )

    again = await _run(runtime, NOW + timedelta(hours=1))  # the same night again: nothing
    assert (again.upgrades, again.downgrades, again.graces_started, again.graces_cleared) == (
        0,
        0,
        0,
        0,
    )

    later = await _run(runtime, NOW + timedelta(days=GRACE, hours=1))  # the grace is over
    tiers = await _tiers(runtime, ids)
    assert (tiers["C"], tiers["E"], tiers["J"]) == (
        ("silver", None),
        ("standard", None),
        ("standard", None),
    )
    assert later.downgrades == 3


async def test_no_accounts_no_work(runtime: Runtime) -> None:
    result = await _run(runtime, NOW)
    assert (result.members, result.upgrades) == (0, 0)
    async with runtime.db.read_only() as session:
        assert await repository.account_page(session, after=0, limit=10) == []
