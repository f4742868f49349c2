"""Loyalty tables: tiers, accounts, the points ledger, activity, tier history, CRM sync, mall."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock

BigId = BigInteger().with_variant(Integer, "sqlite")


class LoyaltyTier(Base):
    """A configured membership level (the defaults of `domain.DEFAULT_TIERS` when none)."""

    __tablename__ = "loyalty_tiers"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    min_growth: Mapped[int] = mapped_column(Integer)
    min_rfm: Mapped[int] = mapped_column(Integer)
    discount_kind: Mapped[str] = mapped_column(String(10))
    per_litre_fen: Mapped[int] = mapped_column(Integer, default=0)
    grade_per_litre: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    percent_bp: Mapped[int] = mapped_column(Integer, default=0)
    points_multiplier_pct: Mapped[int] = mapped_column(Integer, default=100)
    wecom_tag_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class LoyaltyAccount(Base):
    """A member's tier and points balance; created on first use, changed under a row lock."""

    __tablename__ = "loyalty_accounts"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), primary_key=True
    )
    tier_code: Mapped[str] = mapped_column(String(16))
    tier_since: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    grace_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    points_balance: Mapped[int] = mapped_column(BigId, default=0)
    points_debt: Mapped[int] = mapped_column(BigId, default=0)
    external_userid: Mapped[str | None] = mapped_column(String(64))  # WeCom external contact
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class PointsEntry(Base):
    """One change of a member's points; never updated or deleted."""

    __tablename__ = "loyalty_points_entries"
    __table_args__ = (
        UniqueConstraint("member_id", "kind", "ref"),
        Index("ix_loyalty_points_entries_member", "member_id", "id"),
        Index("ix_loyalty_points_entries_order", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(8))  # earn|redeem|expire|reverse|adjust
    ref: Mapped[str] = mapped_column(String(64))  # order, refund, redemption, adjustment id
    order_id: Mapped[str | None] = mapped_column(String(32))  # entries about a fuel order
    points: Mapped[int] = mapped_column(BigId)  # signed change of the balance
    debt: Mapped[int] = mapped_column(BigId, default=0)  # signed change of the debt
    balance_after: Mapped[int] = mapped_column(BigId)
    debt_after: Mapped[int] = mapped_column(BigId)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # credits: the lot's date
    multiplier_pct: Mapped[int | None] = mapped_column(Integer)  # earn: the tier's multiplier
    basis_fen: Mapped[int | None] = mapped_column(BigId)  # earn: the amount kept
    reason: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str | None] = mapped_column(String(40))  # who: staff:3, member:12, system
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class Activity(Base):
    """Growth and RFM facts: a visit (per fuel order), its refund corrections, a share."""

    __tablename__ = "loyalty_activity"
    __table_args__ = (
        UniqueConstraint("kind", "ref"),
        Index("ix_loyalty_activity_member_day", "member_id", "day"),
        Index("ix_loyalty_activity_order", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(8))  # visit|refund|share
    ref: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(32))
    day: Mapped[int] = mapped_column(Integer)  # business day (days since 1970-01-01)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(BigId, default=0)
    growth: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class TierChange(Base):
    """A member's tier moved (history; the event for notifications goes through the outbox)."""

    __tablename__ = "loyalty_tier_changes"
    __table_args__ = (Index("ix_loyalty_tier_changes_member", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    from_tier: Mapped[str] = mapped_column(String(16))
    to_tier: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(12))  # upgrade|downgrade|manual
    growth: Mapped[int] = mapped_column(Integer)
    rfm: Mapped[str] = mapped_column(String(5))  # e.g. "5-4-3"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class CrmSync(Base):
    """The tier tag a member should carry in WeCom, and how far its sync got."""

    __tablename__ = "loyalty_crm_sync"
    __table_args__ = (Index("ix_loyalty_crm_sync_due", "status", "next_attempt_at"),)

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), primary_key=True
    )
    tier_code: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12))  # pending|done|failed|no_contact
    synced_tag: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class MallItem(Base):
    """Something a member can redeem points for, with its stock and per-member limit."""

    __tablename__ = "loyalty_mall_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    category: Mapped[str] = mapped_column(String(20))
    points: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    monthly_limit: Mapped[int] = mapped_column(Integer)  # per member, per business month
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class Redemption(Base):
    """A redemption order: points spent, stock held, picked up at a station with a code."""

    __tablename__ = "loyalty_redemptions"
    __table_args__ = (
        Index("ix_loyalty_redemptions_member", "member_id", "item_id", "created_at"),
        Index("ix_loyalty_redemptions_station", "station_id", "status"),
        Index("ix_loyalty_redemptions_due", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    item_id: Mapped[int] = mapped_column(ForeignKey("loyalty_mall_items.id", ondelete="RESTRICT"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # awaiting_pickup|picked_up|cancelled
    pickup_code: Mapped[str] = mapped_column(String(12), unique=True)
    month: Mapped[int] = mapped_column(Integer)  # business yyyymm, for the monthly limit
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    picked_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    picked_up_by: Mapped[str | None] = mapped_column(String(40))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(40))
    cancel_reason: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # item name at the time
