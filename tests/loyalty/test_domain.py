"""Tiers, growth value, RFM scores, re-tiering decisions and the tier pricing step (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from forecourt.loyalty import domain, points
from forecourt.loyalty.domain import DEFAULT_TIERS, Outcome, TierLadder
from forecourt.order import domain as order_domain
from forecourt.order.domain import Kind, PriceInput, TierDiscount

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
LADDER = TierLadder(DEFAULT_TIERS)


@pytest.mark.parametrize(
    ("kept", "growth"),
    [(0, 0), (-5, 0), (1, 10), (999, 10), (1_000, 11), (23_280, 33), (50_000, 60), (90_000, 60)],
)
def test_visit_growth(kept: int, growth: int) -> None:
    assert domain.visit_growth(kept) == growth


def test_quantile_scores_share_ties_and_top_scores_five() -> None:
    values = np.array([1, 1, 1, 2, 3, 5, 8, 8, 9, 20], dtype=np.int64)
    assert domain.quantile_scores(values).tolist() == [2, 2, 2, 2, 3, 3, 4, 4, 5, 5]
    assert domain.quantile_scores(np.array([7], dtype=np.int64)).tolist() == [5]
    assert domain.quantile_scores(np.array([3, 3, 3], dtype=np.int64)).tolist() == [5, 5, 5]


def test_members_without_visits_score_one() -> None:
    r, f, m = domain.rfm_scores(
        np.array([0, 100, 200], dtype=np.int64),
        np.array([0, 1, 4], dtype=np.int64),
        np.array([0, 5_000, 80_000], dtype=np.int64),
    )
    assert (r.tolist(), f.tolist(), m.tolist()) == ([1, 3, 5], [1, 3, 5], [1, 3, 5])


@pytest.mark.parametrize(
    ("growth", "rfm", "code"),
    [
        (0, 3, "standard"),
        (199, 15, "standard"),
        (200, 6, "standard"),
        (200, 7, "silver"),
        (800, 9, "silver"),
        (800, 10, "gold"),
        (5_000, 12, "gold"),
        (2_000, 13, "diamond"),
    ],
)
def test_qualifying_tier_needs_growth_and_rfm(growth: int, rfm: int, code: str) -> None:
    assert LADDER.qualifying(growth=growth, rfm=rfm).code == code
    many = LADDER.qualifying_many(np.array([growth]), np.array([rfm]))
    assert LADDER.tiers[int(many[0])].code == code


def test_ladder_rejects_bad_configs() -> None:
    with pytest.raises(ValueError, match="lowest tier"):
        TierLadder([DEFAULT_TIERS[1]])
    with pytest.raises(ValueError, match="ranks"):
        TierLadder([DEFAULT_TIERS[0], DEFAULT_TIERS[0]])
    assert LADDER.get("removed-tier").code == "standard"
    assert LADDER.next_above("gold") == DEFAULT_TIERS[3]
    assert LADDER.next_above("diamond") is None


def test_decide_up_at_once_down_after_grace() -> None:
    grace = timedelta(days=30)
    up = domain.decide(current=1, target=3, grace_until=None, now=NOW, grace=grace)
    assert up == domain.Decision(3, None, Outcome.UPGRADE)
    start = domain.decide(current=2, target=0, grace_until=None, now=NOW, grace=grace)
    assert start == domain.Decision(2, NOW + grace, Outcome.GRACE)
    wait = domain.decide(current=2, target=0, grace_until=NOW + grace, now=NOW, grace=grace)
    assert wait == domain.Decision(2, NOW + grace, Outcome.KEEP)
    down = domain.decide(current=2, target=1, grace_until=NOW, now=NOW, grace=grace)
    assert down == domain.Decision(1, None, Outcome.DOWNGRADE)
    back = domain.decide(current=2, target=2, grace_until=NOW + grace, now=NOW, grace=grace)
    assert back == domain.Decision(2, None, Outcome.KEEP)


def test_tier_discounts_per_grade_and_percent() -> None:
    gold, diamond = DEFAULT_TIERS[2], DEFAULT_TIERS[3]
    assert gold.discount("92") == TierDiscount("金卡", per_litre_fen=20)
    assert gold.discount("95") == TierDiscount("金卡", per_litre_fen=25)
    assert diamond.discount("92") == TierDiscount("钻石卡", percent_bp=400)
    assert DEFAULT_TIERS[0].discount("92") is None


def test_pricing_pipeline_adds_the_tier_line() -> None:
    gold = TierDiscount("金卡", per_litre_fen=20)
    priced = order_domain.price(
        PriceInput(
            kind=Kind.POSTPAY,
            grade="92",
            unit_price_fen=776,
            volume_ml=30_000,
            amount_fen=23_280,
            grade_name="92#汽油",
            tier=gold,
        )
    )
    assert [(line.code, line.label, line.amount_fen) for line in priced.lines] == [
        ("list_price", "92#汽油 30.00L × ¥7.76", 23_280),
        ("member_tier", "金卡 每升优惠¥0.20", -600),
    ]
    assert (priced.list_fen, priced.discount_fen, priced.payable_fen) == (23_280, 600, 22_680)
    record = order_domain.line_record(priced.lines[1])
    assert order_domain.tier_of([order_domain.line_record(priced.lines[0]), record]) == gold


def test_percent_tier_and_top_up_untouched() -> None:
    diamond = TierDiscount("钻石卡", percent_bp=400)
    prepay = order_domain.price(
        PriceInput(
            kind=Kind.PREPAY,
            grade="95",
            unit_price_fen=832,
            volume_ml=None,
            amount_fen=30_000,
            tier=diamond,
        )
    )
    assert prepay.lines[1] == order_domain.Line("member_tier", "钻石卡 优惠4%", -1_200, diamond)
    assert prepay.payable_fen == 28_800
    topup = order_domain.price(
        PriceInput(
            kind=Kind.TOPUP,
            grade=None,
            unit_price_fen=0,
            volume_ml=None,
            amount_fen=50_000,
            tier=diamond,
        )
    )
    assert topup.payable_fen == 50_000


def test_pay_at_pump_settles_at_the_discounted_rate() -> None:
    silver = TierDiscount("银卡", per_litre_fen=10)
    # Preset 300.00 at 7.76/L buys 38.659 L: 3.87 off, 296.13 paid.
    preset = order_domain.price(
        PriceInput(
            kind=Kind.PREPAY,
            grade="92",
            unit_price_fen=776,
            volume_ml=None,
            amount_fen=30_000,
            tier=silver,
        )
    )
    assert preset.payable_fen == 29_613
    # 31.404 L pumped = 243.69 at list price, 3.14 off -> 240.55 charged, 55.58 back.
    assert order_domain.settle_prepay(
        paid_fen=29_613, sale_amount_fen=24_369, volume_ml=31_404, unit_price_fen=776, tier=silver
    ) == (24_055, 5_558)
    # The full preset pumped: nothing comes back.
    assert order_domain.settle_prepay(
        paid_fen=29_613, sale_amount_fen=30_000, volume_ml=38_659, unit_price_fen=776, tier=silver
    ) == (29_613, 0)


@pytest.mark.parametrize(
    ("kept", "multiplier", "expected"),
    [(23_280, 100, 232), (23_280, 150, 349), (99, 200, 1), (0, 200, 0), (10_000, 0, 0)],
)
def test_points_for(kept: int, multiplier: int, expected: int) -> None:
    assert points.points_for(kept, multiplier) == expected


def test_lots_expire_at_the_end_of_the_next_year() -> None:
    assert points.lot_expiry(datetime(2026, 3, 5, tzinfo=UTC)) == datetime(
        2027, 12, 31, 16, 0, tzinfo=UTC
    )
    # 31 Dec 2026 20:00 UTC is already 2027 in Shanghai.
    assert points.lot_expiry(datetime(2026, 12, 31, 20, 0, tzinfo=UTC)).year == 2028


def test_reverse_beyond_the_balance_records_debt_and_credits_pay_it() -> None:
    assert points.reverse(300, balance=120) == points.Move(points.Kind.REVERSE, -120, 180)
    assert points.credit(points.Kind.EARN, 100, debt=180) == [
        points.Move(points.Kind.EARN, 100),
        points.Move(points.Kind.REVERSE, -100, -100),
    ]
    assert points.debit(points.Kind.REDEEM, 50, balance=49) is None
