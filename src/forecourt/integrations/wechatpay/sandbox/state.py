"""The sandbox's records (orders, refunds, deliveries) and their WeChat JSON shapes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from forecourt.integrations.wechatpay.client import rfc3339
from forecourt.kit import clock

H5_URL_TTL = timedelta(minutes=5)  # WeChat: an h5_url must be opened within 5 minutes

TRADE_STATE_DESC = {
    "SUCCESS": "支付成功",
    "NOTPAY": "订单未支付",
    "CLOSED": "订单已关闭",
    "REFUND": "订单发生过退款",
    "PAYERROR": "支付失败，请重新下单支付",
}


def _digits(n: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


def prepay_id(now: datetime) -> str:
    """A prepay_id shaped like WeChat's ("wx" + Beijing time + 20 hex)."""
    return "wx" + clock.local(now).strftime("%Y%m%d%H%M%S") + secrets.token_hex(10)


def transaction_id(now: datetime) -> str:
    """A 28-digit transaction_id shaped like WeChat's ("42000…" + date + digits)."""
    return "42000" + _digits(5) + clock.local(now).strftime("%Y%m%d") + _digits(10)


def refund_id(now: datetime) -> str:
    """A 29-digit refund_id shaped like WeChat's ("50300…" + date + digits)."""
    return "50300" + _digits(6) + clock.local(now).strftime("%Y%m%d") + _digits(10)


def h5_package() -> str:
    """The `package` of an h5_url: ten digits, like WeChat's (…&package=1037687096)."""
    return str(1_000_000_000 + secrets.randbelow(9_000_000_000))


@dataclass
class Order:
    """One JSAPI or H5 (trade_type MWEB) transaction as the emulated WeChat Pay holds it."""

    request: dict[str, Any]  # the prepay body, for idempotent retries
    prepay_id: str
    out_trade_no: str
    description: str
    total: int
    openid: str | None  # None for H5: the payer is not known to the merchant
    notify_url: str
    created_at: datetime
    time_expire: datetime | None = None
    attach: str | None = None
    trade_type: str = "JSAPI"  # or MWEB (H5)
    client_ip: str | None = None  # H5 scene_info.payer_client_ip
    h5_links: dict[str, datetime] = field(default_factory=dict)  # h5_url package -> issued
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    refunded: int = 0  # fen claimed by refunds that have not failed

    def json(self, *, appid: str, mchid: str) -> dict[str, Any]:
        """The query answer for this transaction."""
        body: dict[str, Any] = {
            "appid": appid,
            "mchid": mchid,
            "out_trade_no": self.out_trade_no,
            "trade_state": self.trade_state,
            "trade_state_desc": TRADE_STATE_DESC[self.trade_state],
        }
        if self.openid is not None:
            body["payer"] = {"openid": self.openid}
        body["amount"] = {"total": self.total, "currency": "CNY", "payer_currency": "CNY"}
        body["promotion_detail"] = []
        if self.attach is not None:
            body["attach"] = self.attach
        if self.transaction_id and self.success_time:
            body["transaction_id"] = self.transaction_id
            body["trade_type"] = self.trade_type
            body["bank_type"] = "OTHERS"
            body["success_time"] = rfc3339(self.success_time)
            body["amount"]["payer_total"] = self.total
        return body


@dataclass
class Refund:
    """One refund of an order."""

    order: Order
    out_refund_no: str
    refund_id: str
    amount: int
    reason: str | None
    notify_url: str | None
    created_at: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None

    def json(self) -> dict[str, Any]:
        """The create/query answer for this refund."""
        body: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": rfc3339(self.created_at),
            "status": self.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": self.order.total,
                "refund": self.amount,
                "payer_total": self.order.total,
                "payer_refund": self.amount,
                "settlement_total": self.order.total,
                "settlement_refund": self.amount,
                "discount_refund": 0,
                "currency": "CNY",
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        if self.success_time is not None:
            body["success_time"] = rfc3339(self.success_time)
        return body

    def resource(self, *, mchid: str) -> dict[str, Any]:
        """The decrypted resource of this refund's REFUND.* notification."""
        body: dict[str, Any] = {
            "mchid": mchid,
            "out_trade_no": self.order.out_trade_no,
            "transaction_id": self.order.transaction_id,
            "out_refund_no": self.out_refund_no,
            "refund_id": self.refund_id,
            "refund_status": self.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": self.order.total,
                "refund": self.amount,
                "payer_total": self.order.total,
                "payer_refund": self.amount,
            },
        }
        if self.success_time is not None:
            body["success_time"] = rfc3339(self.success_time)
        return body


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a notification to a merchant's notify_url."""

    event_id: str
    event_type: str
    url: str
    attempt: int  # 1 = first delivery, 2.. = resends
    status: int | None  # HTTP status, None when unreachable / timed out
    error: str | None = None
    at: datetime = field(default_factory=clock.now)
