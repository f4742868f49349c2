"""Request and response models of the payment area."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PaymentIn(BaseModel):
    """Pay an order through a provider."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=20, examples=["wechatpay"])
    channel: Literal["miniprogram", "h5"] = Field(
        default="miniprogram",
        description="miniprogram: wx.requestPayment fields; h5: a page to open in the browser",
    )


class PaymentOut(BaseModel):
    """A payment attempt and what the client needs to finish it."""

    id: str
    order_id: str
    provider: str
    status: str
    amount_fen: int
    refunded_fen: int
    client_params: dict[str, str]
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None


class RefundIn(BaseModel):
    """Refund part or all of an order."""

    model_config = ConfigDict(extra="forbid")

    amount_fen: int = Field(gt=0)
    reason: str = Field(min_length=2, max_length=200)


class RefundOut(BaseModel):
    """A refund."""

    id: str
    order_id: str
    payment_id: str
    provider: str
    kind: str
    status: str
    amount_fen: int
    reason: str
    requested_by: str
    approved_by: str | None
    failure: str | None
    created_at: datetime
    completed_at: datetime | None


class RefundDecision(BaseModel):
    """Approve or reject a refund waiting for approval."""

    model_config = ConfigDict(extra="forbid")

    approve: bool
    note: str | None = Field(default=None, max_length=200)


class ReconcileIn(BaseModel):
    """Run reconciliation for one provider and business day."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    bill_date: date


class ReconciliationOut(BaseModel):
    """The outcome of matching a provider statement against our records."""

    provider: str
    bill_date: date
    status: str
    bill_rows: int
    matched: int
    bill_total_fen: int
    our_total_fen: int
    items: list[dict[str, Any]]
    created_at: datetime
