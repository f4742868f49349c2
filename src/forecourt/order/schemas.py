"""Request and response models of the order area."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OrderIn(BaseModel):
    """Create a fuel order: post-pay (pay a completed sale) or pay-at-pump (preset)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["postpay", "prepay"]
    station_id: int = Field(gt=0)
    nozzle: int = Field(gt=0, le=999, description="the nozzle number (枪号) drivers see")
    sale_seq: int | None = Field(
        default=None, gt=0, description="post-pay: which payable sale (default: the only one)"
    )
    amount_fen: int | None = Field(
        default=None, gt=0, description="post-pay: must equal the sale; pay-at-pump: the preset"
    )


class TopUpIn(BaseModel):
    """Create a wallet top-up order."""

    model_config = ConfigDict(extra="forbid")

    amount_fen: int = Field(gt=0)


class LineOut(BaseModel):
    """One receipt line."""

    code: str
    label: str
    amount_fen: int


class OrderOut(BaseModel):
    """An order as its driver sees it."""

    id: str
    kind: str
    status: str
    station_id: int | None
    nozzle: int | None
    fp: int | None
    sale_seq: int | None
    grade: str | None
    unit_price_fen: int | None
    volume_ml: int | None
    preset_fen: int | None
    lines: list[LineOut]
    list_fen: int
    discount_fen: int
    payable_fen: int
    paid_fen: int
    settled_fen: int | None
    refunded_fen: int
    bonus_fen: int
    provider: str | None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    completed_at: datetime | None
    close_reason: str | None


class OrderList(BaseModel):
    """A page of orders."""

    items: list[OrderOut]
    next_before: datetime | None


class StaffOrderOut(OrderOut):
    """An order as station staff see it: the payer's masked phone, never the number."""

    member_id: int
    payer_phone: str | None
