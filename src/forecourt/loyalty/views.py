"""Response models built from loyalty rows and domain objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth import repository as auth_repository
from forecourt.kit.money import yuan
from forecourt.loyalty import crm_repository, domain, pricing, repository, service
from forecourt.loyalty.errors import MemberNotFound
from forecourt.loyalty.models import LoyaltyTier, MallItem, PointsEntry, Redemption
from forecourt.loyalty.schemas import (
    AdminEntryOut,
    AdminTierOut,
    CardOut,
    EntryOut,
    MallItemOut,
    MemberLoyaltyOut,
    RedemptionOut,
    StaffRedemptionOut,
    TierChangeOut,
    TierIn,
    TierOut,
)
from forecourt.order.domain import tier_label


def discount_label(tier: domain.Tier) -> str:
    """How the tier discounts fuel, in words."""
    sample = tier.discount(None)
    if tier.discount_kind is domain.DiscountKind.PER_LITRE and tier.grade_per_litre:
        grades = "，".join(
            f"{g}# ¥{yuan(off)}/L" for g, off in sorted(tier.grade_per_litre.items())
        )
        base = f"每升优惠¥{yuan(tier.per_litre_fen)}" if tier.per_litre_fen else "无"
        return f"{tier.name} {base}（{grades}）"
    return tier_label(sample) if sample is not None else f"{tier.name} 无油价优惠"


def tier_out(tier: domain.Tier) -> TierOut:
    """A tier for drivers."""
    return TierOut(
        code=tier.code,
        name=tier.name,
        rank=tier.rank,
        min_growth=tier.min_growth,
        min_rfm=tier.min_rfm,
        discount_kind=tier.discount_kind,
        per_litre_fen=tier.per_litre_fen,
        grade_per_litre=dict(tier.grade_per_litre),
        percent_bp=tier.percent_bp,
        points_multiplier_pct=tier.points_multiplier_pct,
        discount_label=discount_label(tier),
    )


def admin_tier_out(tier: domain.Tier) -> AdminTierOut:
    """A tier for the back office."""
    return AdminTierOut(**tier_out(tier).model_dump(), wecom_tag_id=tier.wecom_tag_id)


def tier_row(data: TierIn) -> LoyaltyTier:
    """A configuration row from the request."""
    return LoyaltyTier(**data.model_dump(mode="json"))


async def card(
    session: AsyncSession, *, member_id: int, window_days: int, now: datetime
) -> CardOut:
    """The member card."""
    s = await service.standing(session, member_id=member_id, window_days=window_days, now=now)
    return CardOut(
        member_id=member_id,
        tier=tier_out(s.tier),
        tier_since=s.account.tier_since if s.account else None,
        grace_until=s.account.grace_until if s.account else None,
        next_tier=tier_out(s.next_tier) if s.next_tier else None,
        growth=s.growth,
        growth_to_next=max(0, s.next_tier.min_growth - s.growth) if s.next_tier else None,
        visits=s.visits,
        spend_fen=s.spend_fen,
        window_days=window_days,
        points_balance=s.account.points_balance if s.account else 0,
        points_debt=s.account.points_debt if s.account else 0,
        expiring_points=s.expiring_points,
        expiring_at=s.expiring_at,
    )


def entry_out(row: PointsEntry) -> EntryOut:
    """A ledger entry for its member."""
    return EntryOut.model_validate(row, from_attributes=True)


def admin_entry_out(row: PointsEntry) -> AdminEntryOut:
    """A ledger entry for the back office."""
    return AdminEntryOut.model_validate(row, from_attributes=True)


async def member_lookup(
    session: AsyncSession, *, member_id: int, window_days: int, now: datetime
) -> MemberLoyaltyOut:
    """Everything the back office sees of a member's loyalty (masked phone only)."""
    member = await repository.member(session, member_id)
    if member is None:
        raise MemberNotFound(f"no member {member_id}")
    account = await repository.account(session, member_id)
    sync = await crm_repository.sync_row(session, member_id)
    history = await repository.tier_changes(session, member_id=member_id, limit=20)
    return MemberLoyaltyOut(
        member_id=member_id,
        phone_masked=member.phone_masked,
        card=await card(session, member_id=member_id, window_days=window_days, now=now),
        external_userid=account.external_userid if account else None,
        crm_status=sync.status if sync else None,
        crm_tag=sync.synced_tag if sync else None,
        tier_history=[TierChangeOut.model_validate(h, from_attributes=True) for h in history],
    )


def item_out(item: MallItem) -> MallItemOut:
    """A catalogue item."""
    return MallItemOut(
        id=item.id,
        sku=item.sku,
        name=item.name,
        category=item.category,
        points=item.points,
        stock=item.stock,
        monthly_limit=item.monthly_limit,
        description=item.description,
        in_stock=item.stock > 0,
    )


def redemption_out(row: Redemption, *, with_code: bool) -> RedemptionOut:
    """A redemption; the pick-up code only for its member."""
    return RedemptionOut(
        id=row.id,
        item_id=row.item_id,
        item_name=str(row.details.get("name", "")),
        station_id=row.station_id,
        quantity=row.quantity,
        points=row.points,
        status=row.status,
        pickup_code=row.pickup_code if with_code else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        picked_up_at=row.picked_up_at,
        cancelled_at=row.cancelled_at,
        cancel_reason=row.cancel_reason,
    )


async def staff_redemptions(
    session: AsyncSession, rows: Sequence[Redemption]
) -> list[StaffRedemptionOut]:
    """Redemptions with the members' masked phones (never the code)."""
    masked = await auth_repository.masked_phones(session, {r.member_id for r in rows})
    return [
        StaffRedemptionOut(
            **redemption_out(r, with_code=False).model_dump(),
            member_id=r.member_id,
            member_phone=masked.get(r.member_id),
        )
        for r in rows
    ]


async def tiers(session: AsyncSession) -> domain.TierLadder:
    """The tier ladder in force."""
    return await pricing.ladder(session)
