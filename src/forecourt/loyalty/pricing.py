"""What pricing needs from loyalty: the tier ladder and a member's tier discount."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.kit.refcache import RefCache
from forecourt.loyalty import repository
from forecourt.loyalty.domain import DEFAULT_TIERS, DiscountKind, Tier, TierLadder
from forecourt.loyalty.models import LoyaltyTier
from forecourt.order.domain import TierDiscount


def tier_of_row(row: LoyaltyTier) -> Tier:
    """A configured tier row as a domain tier."""
    return Tier(
        code=row.code,
        name=row.name,
        rank=row.rank,
        min_growth=row.min_growth,
        min_rfm=row.min_rfm,
        discount_kind=DiscountKind(row.discount_kind),
        per_litre_fen=row.per_litre_fen,
        grade_per_litre=dict(row.grade_per_litre or {}),
        percent_bp=row.percent_bp,
        points_multiplier_pct=row.points_multiplier_pct,
        wecom_tag_id=row.wecom_tag_id,
    )


def row_of_tier(tier: Tier, *, updated_at: datetime) -> LoyaltyTier:
    """A domain tier as a row to store."""
    return LoyaltyTier(
        code=tier.code,
        name=tier.name,
        rank=tier.rank,
        min_growth=tier.min_growth,
        min_rfm=tier.min_rfm,
        discount_kind=tier.discount_kind.value,
        per_litre_fen=tier.per_litre_fen,
        grade_per_litre=dict(tier.grade_per_litre),
        percent_bp=tier.percent_bp,
        points_multiplier_pct=tier.points_multiplier_pct,
        wecom_tag_id=tier.wecom_tag_id,
        updated_at=updated_at,
    )


async def _load_ladder(session: AsyncSession) -> TierLadder:
    rows = await repository.tiers(session)
    return TierLadder([tier_of_row(r) for r in rows] if rows else DEFAULT_TIERS)


LADDER = RefCache(_load_ladder, ttl_seconds=10.0)


async def ladder(session: AsyncSession) -> TierLadder:
    """The configured tiers, or the defaults when none are configured (cached for seconds)."""
    return await LADDER.get(session)


async def member_tier(session: AsyncSession, *, member_id: int) -> Tier:
    """The member's tier (the entry tier before their first order)."""
    tiers = await ladder(session)
    account = await repository.account(session, member_id)
    return tiers.get(account.tier_code if account is not None else None)


async def tier_discount(
    session: AsyncSession, *, member_id: int, grade: str | None
) -> TierDiscount | None:
    """The discount the member's tier gives on a grade (None: no discount)."""
    tier = await member_tier(session, member_id=member_id)
    return tier.discount(grade)


async def replace_tiers(session: AsyncSession, rows: list[LoyaltyTier]) -> None:
    """Replace the tier configuration and drop the cached ladder."""
    await repository.replace_tiers(session, rows)
    LADDER.changed_in(session)
