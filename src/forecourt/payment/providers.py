"""The one protocol every payment provider adapter implements, and its plain data types.

Adapters live in `integrations/<vendor>/provider.py`; each wraps that vendor's wire client.
Amounts are integer fen; times are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol


class ProviderName(StrEnum):
    """Payment channels an order may be paid through."""

    WECHATPAY = "wechatpay"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"
    WALLET = "wallet"


class ProviderError(Exception):
    """The provider refused a call or answered something we could not trust."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class InvalidNotification(Exception):
    """A callback whose signature, timestamp, merchant or payload does not check out."""


@dataclass(frozen=True, slots=True)
class PrepayRequest:
    """Ask the provider to open a payment for `out_trade_no`."""

    out_trade_no: str
    amount_fen: int
    description: str
    notify_url: str
    expires_at: datetime
    payer_id: str | None = None  # WeChat openid / Alipay buyer id; None where not needed
    requested_at: datetime | None = None  # our send time; UnionPay's txnTime is derived from it
    client_ip: str | None = None  # payer's IP; WeChat Pay H5 needs it (scene_info.payer_client_ip)


@dataclass(frozen=True, slots=True)
class PrepayResult:
    """What the client needs to finish paying (e.g. `wx.requestPayment` fields)."""

    provider_ref: str  # prepay_id / trade_no / tn
    client_params: dict[str, str]


TradeState = Literal["pending", "paid", "closed", "refunded", "failed"]


@dataclass(frozen=True, slots=True)
class TradeStatus:
    """The provider's view of one payment (active query)."""

    out_trade_no: str
    state: TradeState
    transaction_id: str | None = None
    amount_fen: int | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderNotification:
    """A verified, decrypted callback: a payment or a refund outcome."""

    kind: Literal["payment", "refund"]
    event_id: str  # the provider's notification id (dedup of the raw callback)
    merchant_id: str  # mchid / app_id / merId, checked against ours by the service
    out_trade_no: str
    transaction_id: str
    amount_fen: int  # paid total (payment) or refunded amount (refund)
    succeeded: bool
    occurred_at: datetime | None = None
    out_refund_no: str | None = None
    refund_id: str | None = None
    raw: Mapping[str, object] = field(default_factory=dict)  # decrypted payload, no secrets


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """Return `refund_fen` of a paid `total_fen` payment."""

    out_trade_no: str
    transaction_id: str
    out_refund_no: str
    refund_fen: int
    total_fen: int
    reason: str
    notify_url: str
    requested_at: datetime | None = None  # our send time (UnionPay txnTime of the refund)


RefundState = Literal["processing", "succeeded", "failed"]


@dataclass(frozen=True, slots=True)
class RefundResult:
    """The provider's answer about one refund."""

    out_refund_no: str
    refund_id: str | None
    state: RefundState
    amount_fen: int


@dataclass(frozen=True, slots=True)
class BillRow:
    """One line of the provider's daily statement."""

    kind: Literal["payment", "refund"]
    out_trade_no: str
    transaction_id: str
    amount_fen: int  # positive for both kinds
    occurred_at: datetime
    out_refund_no: str | None = None
    refund_id: str | None = None


@dataclass(frozen=True, slots=True)
class NotificationAck:
    """The exact HTTP answer the provider expects from a callback handler."""

    status: int
    body: bytes
    media_type: str


class PaymentProvider(Protocol):
    """One external payment channel (WeChat Pay, Alipay, UnionPay)."""

    name: ProviderName
    merchant_id: str

    async def prepay(self, request: PrepayRequest) -> PrepayResult:
        """Open the payment; raises ProviderError."""
        ...

    async def query(
        self, out_trade_no: str, *, requested_at: datetime | None = None
    ) -> TradeStatus:
        """Ask the provider for the payment's current state (`requested_at` as in the prepay)."""
        ...

    async def close(self, out_trade_no: str) -> None:
        """Close an unpaid payment so it can no longer be paid."""
        ...

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Request a refund (idempotent by out_refund_no at the provider)."""
        ...

    async def query_refund(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str | None = None,
        requested_at: datetime | None = None,
    ) -> RefundResult:
        """Ask for a refund's state (Alipay needs the trade, UnionPay the refund's send time)."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        """Verify and decode a callback; raises InvalidNotification."""
        ...

    def acknowledge(self, ok: bool) -> NotificationAck:
        """The answer that tells the provider to stop (ok) or to resend (not ok)."""
        ...

    async def bill(self, bill_date: date) -> list[BillRow]:
        """Download and parse the statement of one business day (Asia/Shanghai)."""
        ...


class PaymentSandbox(Protocol):
    """Test and demo controls every in-process provider sandbox offers."""

    app: Any  # the sandbox's ASGI app (cashier page, wire endpoints)

    async def complete(self, out_trade_no: str) -> None:
        """Act as the payer: pay the open payment and send the notification."""
        ...
