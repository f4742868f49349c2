"""Membership as pure domain code: tiers, growth value, RFM quantile scores, re-tiering.

Growth value (R16), over a rolling window (default 365 days):

    per paid fuel visit   10 (frequency) + min(50, kept yuan // 10) (spend per visit)
    per share             5, at most `share_daily_cap` (default 3) counted per business day

A refund recomputes its visit on the amount kept (a full refund removes the visit).

RFM over the same window, among members with at least one visit: recency (the business
day of the last visit), frequency (visits) and monetary (fen kept). Each is scored 1-5 by
its percentile rank, score = ceil(5 * share of members with a value <= this one), so ties
share a score and the best value always scores 5; members without a visit score 1-1-1.

A member qualifies for the highest tier whose growth threshold AND RFM-total threshold
(R + F + M, 3-15) they reach. Upgrades apply at once; a member below their tier keeps it
for a grace period (default 30 days) and then moves to the tier they qualify for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from forecourt.kit import clock
from forecourt.order.domain import TierDiscount

VISIT_GROWTH = 10
SPEND_FEN_PER_GROWTH = 1_000  # 1 growth per 10 yuan kept
SPEND_GROWTH_CAP = 50  # per visit (500 yuan)
SHARE_GROWTH = 5
EPOCH = date(1970, 1, 1)

IntArray = npt.NDArray[np.int64]


class DiscountKind(StrEnum):
    """How a tier discounts fuel."""

    NONE = "none"
    PER_LITRE = "per_litre"  # fen per litre off (optionally per grade)
    PERCENT = "percent"  # basis points of the amount


@dataclass(frozen=True, slots=True)
class Tier:
    """One membership level and what it gives."""

    code: str
    name: str
    rank: int
    min_growth: int
    min_rfm: int
    discount_kind: DiscountKind = DiscountKind.NONE
    per_litre_fen: int = 0
    grade_per_litre: Mapping[str, int] = field(default_factory=dict)
    percent_bp: int = 0
    points_multiplier_pct: int = 100
    wecom_tag_id: str | None = None

    def discount(self, grade: str | None) -> TierDiscount | None:
        """The pricing step's view of this tier for one grade (None: no discount)."""
        if self.discount_kind is DiscountKind.PERCENT and self.percent_bp > 0:
            return TierDiscount(name=self.name, percent_bp=self.percent_bp)
        if self.discount_kind is DiscountKind.PER_LITRE:
            off = self.grade_per_litre.get(grade or "", self.per_litre_fen)
            return TierDiscount(name=self.name, per_litre_fen=off) if off > 0 else None
        return None


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("standard", "普通", 0, 0, 0, wecom_tag_id="etFcTierStandard"),
    Tier(
        "silver",
        "银卡",
        1,
        200,
        7,
        DiscountKind.PER_LITRE,
        per_litre_fen=10,
        points_multiplier_pct=120,
        wecom_tag_id="etFcTierSilver",
    ),
    Tier(
        "gold",
        "金卡",
        2,
        800,
        10,
        DiscountKind.PER_LITRE,
        per_litre_fen=20,
        grade_per_litre={"95": 25, "98": 30},
        points_multiplier_pct=150,
        wecom_tag_id="etFcTierGold",
    ),
    Tier(
        "diamond",
        "钻石卡",
        3,
        2000,
        13,
        DiscountKind.PERCENT,
        percent_bp=400,
        points_multiplier_pct=200,
        wecom_tag_id="etFcTierDiamond",
    ),
)


class TierLadder:
    """The configured tiers, lowest first; rank 0 is where every member starts."""

    def __init__(self, tiers: Sequence[Tier]) -> None:
        ordered = sorted(tiers, key=lambda t: t.rank)
        if not ordered or ordered[0].min_growth != 0 or ordered[0].min_rfm != 0:
            raise ValueError("the lowest tier must have no thresholds")
        if len({t.rank for t in ordered}) != len(ordered):
            raise ValueError("tier ranks must be distinct")
        if len({t.code for t in ordered}) != len(ordered):
            raise ValueError("tier codes must be distinct")
        self.tiers: tuple[Tier, ...] = tuple(ordered)
        self._by_code = {t.code: t for t in ordered}

    @property
    def base(self) -> Tier:
        """The entry tier (普通)."""
        return self.tiers[0]

    def get(self, code: str | None) -> Tier:
        """The tier with `code`; the entry tier when unknown (e.g. a removed tier)."""
        return self._by_code.get(code or "", self.base)

    def index(self, code: str | None) -> int:
        """Position of a tier on the ladder (0 = entry)."""
        return self.tiers.index(self.get(code))

    def qualifying(self, *, growth: int, rfm: int) -> Tier:
        """The highest tier whose growth and RFM thresholds are both met."""
        best = self.base
        for tier in self.tiers:
            if growth >= tier.min_growth and rfm >= tier.min_rfm:
                best = tier
        return best

    def qualifying_many(self, growth: IntArray, rfm: IntArray) -> IntArray:
        """Ladder positions of the qualifying tier for whole arrays of members."""
        target = np.zeros(len(growth), dtype=np.int64)
        for position, tier in enumerate(self.tiers):
            target[(growth >= tier.min_growth) & (rfm >= tier.min_rfm)] = position
        return target

    def next_above(self, code: str) -> Tier | None:
        """The tier above `code`, if any."""
        position = self.index(code)
        return self.tiers[position + 1] if position + 1 < len(self.tiers) else None


# -- growth ----------------------------------------------------------------------------------


def visit_growth(kept_fen: int) -> int:
    """Growth of one fuel visit on the amount kept: 10 + 1 per 10 yuan, the latter capped at 50."""
    if kept_fen <= 0:
        return 0
    return VISIT_GROWTH + min(SPEND_GROWTH_CAP, kept_fen // SPEND_FEN_PER_GROWTH)


def business_day(moment: datetime) -> int:
    """Days since 1970-01-01 of the moment's business date (Asia/Shanghai)."""
    return (clock.local(moment).date() - EPOCH).days


def window_start_day(now: datetime, window_days: int) -> int:
    """First business day inside the rolling window ending today."""
    return business_day(now) - window_days + 1


# -- RFM -------------------------------------------------------------------------------------


def quantile_scores(values: IntArray) -> IntArray:
    """Scores 1-5 by percentile rank: ceil(5 * count(<= v) / n); higher values score higher."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ordered = np.sort(values, kind="stable")
    at_most = np.searchsorted(ordered, values, side="right").astype(np.int64)
    return (5 * at_most + n - 1) // n


def rfm_scores(
    last_day: IntArray, frequency: IntArray, monetary: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """R, F and M scores of each member; members without a visit (frequency 0) score 1."""
    active = frequency > 0
    scores = []
    for values in (last_day, frequency, monetary):
        score = np.ones(len(values), dtype=np.int64)
        score[active] = quantile_scores(values[active])
        scores.append(score)
    return scores[0], scores[1], scores[2]


# -- re-tiering ------------------------------------------------------------------------------


class Outcome(StrEnum):
    """What re-tiering does to one member."""

    KEEP = "keep"
    UPGRADE = "upgrade"
    GRACE = "grace"  # below their tier: the grace period starts
    DOWNGRADE = "downgrade"


@dataclass(frozen=True, slots=True)
class Decision:
    """The member's tier position and grace deadline after re-tiering."""

    position: int
    grace_until: datetime | None
    outcome: Outcome


def decide(
    *,
    current: int,
    target: int,
    grace_until: datetime | None,
    now: datetime,
    grace: timedelta,
) -> Decision:
    """Up at once; down only after the grace period; back on track clears the grace."""
    if target > current:
        return Decision(target, None, Outcome.UPGRADE)
    if target == current:
        return Decision(current, None, Outcome.KEEP)
    if grace_until is None:
        return Decision(current, now + grace, Outcome.GRACE)
    if grace_until <= now:
        return Decision(target, None, Outcome.DOWNGRADE)
    return Decision(current, grace_until, Outcome.KEEP)
