"""Request and response models of loyalty and the points mall."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forecourt.loyalty.domain import DiscountKind

Code = Field(pattern=r"^[a-z][a-z0-9_]{1,15}$")


class TierOut(BaseModel):
    """A membership level as drivers see it."""

    code: str
    name: str
    rank: int
    min_growth: int
    min_rfm: int
    discount_kind: DiscountKind
    per_litre_fen: int
    grade_per_litre: dict[str, int]
    percent_bp: int
    points_multiplier_pct: int
    discount_label: str


class AdminTierOut(TierOut):
    """A membership level with its WeCom tag."""

    wecom_tag_id: str | None


class TierIn(BaseModel):
    """One level of the tier configuration."""

    model_config = ConfigDict(extra="forbid")

    code: str = Code
    name: str = Field(min_length=1, max_length=16)
    rank: int = Field(ge=0, le=20)
    min_growth: int = Field(ge=0, le=10_000_000)
    min_rfm: int = Field(ge=0, le=15)
    discount_kind: DiscountKind
    per_litre_fen: int = Field(default=0, ge=0, le=500)
    grade_per_litre: dict[str, int] = Field(default_factory=dict, max_length=20)
    percent_bp: int = Field(default=0, ge=0, le=3_000)
    points_multiplier_pct: int = Field(default=100, ge=0, le=1_000)
    wecom_tag_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("grade_per_litre")
    @classmethod
    def _per_grade(cls, value: dict[str, int]) -> dict[str, int]:
        if any(not 0 <= off <= 500 or len(grade) > 8 for grade, off in value.items()):
            raise ValueError("fen per litre must be 0-500 for grades of at most 8 characters")
        return value


class TiersIn(BaseModel):
    """The whole tier configuration (replaces the current one)."""

    model_config = ConfigDict(extra="forbid")

    tiers: list[TierIn] = Field(min_length=1, max_length=10)


class CardOut(BaseModel):
    """The member card: tier, growth, points."""

    member_id: int
    tier: TierOut
    tier_since: datetime | None
    grace_until: datetime | None
    next_tier: TierOut | None
    growth: int
    growth_to_next: int | None
    visits: int
    spend_fen: int
    window_days: int
    points_balance: int
    points_debt: int
    expiring_points: int
    expiring_at: datetime | None


class EntryOut(BaseModel):
    """One points ledger entry."""

    id: int
    kind: str
    ref: str
    points: int
    debt: int
    balance_after: int
    debt_after: int
    expires_at: datetime | None
    reason: str | None
    created_at: datetime


class AdminEntryOut(EntryOut):
    """A ledger entry with who made it."""

    member_id: int
    actor: str | None


class ShareIn(BaseModel):
    """A share from the app (counted for growth up to a daily cap)."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["wechat_friend", "wechat_moments", "other"]


class ShareOut(BaseModel):
    """Whether the share counted."""

    counted: bool
    growth: int
    shares_today: int
    daily_cap: int


class AdjustIn(BaseModel):
    """A back-office points correction; the reason is required."""

    model_config = ConfigDict(extra="forbid")

    points: int = Field(ge=-1_000_000, le=1_000_000, description="signed; never zero")
    reason: str = Field(min_length=2, max_length=200)

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        return value

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if len(value.strip()) < 2:
            raise ValueError("a reason of at least 2 characters is required")
        return value.strip()


class ExternalIdIn(BaseModel):
    """A member's WeCom external contact id."""

    model_config = ConfigDict(extra="forbid")

    external_userid: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")


class TierChangeOut(BaseModel):
    """One tier move."""

    from_tier: str
    to_tier: str
    reason: str
    growth: int
    rfm: str
    created_at: datetime


class MemberLoyaltyOut(BaseModel):
    """The back office's look-up of a member."""

    member_id: int
    phone_masked: str | None
    card: CardOut
    external_userid: str | None
    crm_status: str | None
    crm_tag: str | None
    tier_history: list[TierChangeOut]


class MallItemOut(BaseModel):
    """A catalogue item."""

    id: int
    sku: str
    name: str
    category: str
    points: int
    stock: int
    monthly_limit: int
    description: str
    in_stock: bool


class MallItemPatch(BaseModel):
    """Change an item's stock, price in points, limit or visibility."""

    model_config = ConfigDict(extra="forbid")

    stock: int | None = Field(default=None, ge=0, le=1_000_000)
    points: int | None = Field(default=None, ge=1, le=1_000_000)
    monthly_limit: int | None = Field(default=None, ge=1, le=100)
    active: bool | None = None


class RedeemIn(BaseModel):
    """Redeem points for an item, to be picked up at a station."""

    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(gt=0)
    quantity: int = Field(default=1, ge=1, le=10)
    station_id: int = Field(gt=0)


class RedemptionOut(BaseModel):
    """A redemption; the pick-up code is shown to its member only."""

    id: int
    item_id: int
    item_name: str
    station_id: int
    quantity: int
    points: int
    status: str
    pickup_code: str | None
    created_at: datetime
    expires_at: datetime
    picked_up_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class StaffRedemptionOut(RedemptionOut):
    """A redemption as station staff see it."""

    member_id: int
    member_phone: str | None


class PickupIn(BaseModel):
    """The attendant confirms a pick-up with the member's code."""

    model_config = ConfigDict(extra="forbid")

    station_id: int = Field(gt=0)
    code: str = Field(pattern=r"^[0-9]{8}$")


class CancelIn(BaseModel):
    """Why a redemption is cancelled."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="会员取消", min_length=2, max_length=100)
