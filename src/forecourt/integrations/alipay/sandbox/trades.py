"""The sandbox's trade book: alipay.trade.* business rules as Alipay applies them.

Each handler takes the decoded `biz_content` and returns the answer node's business fields or
raises `BizError` (code 40004 with an Alipay `sub_code`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from forecourt.integrations.alipay import crypto
from forecourt.kit import clock

WAIT = "WAIT_BUYER_PAY"
SUCCESS = "TRADE_SUCCESS"
CLOSED = "TRADE_CLOSED"
SANDBOX_BUYER_ID = "2088102177846880"
SANDBOX_SELLER_ID = "2088102177846881"


class BizError(Exception):
    """A business failure: code 40004 with `sub_code` and `sub_msg`."""

    def __init__(self, sub_code: str, sub_msg: str, *, code: str = "40004") -> None:
        super().__init__(f"{sub_code}: {sub_msg}")
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg


@dataclass
class Refund:
    """One accepted refund request."""

    out_request_no: str
    amount_fen: int
    reason: str
    refunded_at: datetime


@dataclass
class Trade:
    """One trade as Alipay keeps it."""

    out_trade_no: str
    trade_no: str
    total_fen: int
    subject: str
    buyer_id: str | None
    buyer_open_id: str | None
    notify_url: str | None
    created_at: datetime
    expires_at: datetime | None
    status: str = WAIT
    product_code: str = "JSAPI_PAY"
    return_url: str | None = None  # wap.pay: where the browser goes after paying
    quit_url: str | None = None  # wap.pay: where the browser goes when the payer quits
    paid_at: datetime | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded_fen(self) -> int:
        """The cumulative refunded amount."""
        return sum(r.amount_fen for r in self.refunds.values())

    def settle_expiry(self) -> None:
        """An unpaid trade past its time_expire is closed."""
        if self.status == WAIT and self.expires_at and clock.now() >= self.expires_at:
            self.status = CLOSED


def _need(biz: dict[str, Any], name: str) -> str:
    value = biz.get(name)
    if value is None or str(value) == "":
        raise BizError("ACQ.INVALID_PARAMETER", f"参数无效: 缺少必选参数 {name}")
    return str(value)


def _amount(biz: dict[str, Any], name: str) -> int:
    raw = _need(biz, name)
    try:
        value = crypto.fen(raw)
    except ValueError:
        raise BizError("ACQ.INVALID_PARAMETER", f"参数无效: {name} 格式错误") from None
    if value <= 0:
        raise BizError("ACQ.INVALID_PARAMETER", f"参数无效: {name} 必须大于0")
    return value


def new_trade_no() -> str:
    """A 28-digit trade number shaped like Alipay's."""
    day = clock.local(clock.now()).strftime("%Y%m%d")
    return f"{day}22001{secrets.randbelow(10**15):015d}"


class TradeBook:
    """Every trade of the sandbox's one merchant app."""

    def __init__(self) -> None:
        self.trades: dict[str, Trade] = {}
        self._by_trade_no: dict[str, str] = {}

    def find(self, biz: dict[str, Any]) -> Trade:
        """The trade named by out_trade_no or trade_no; ACQ.TRADE_NOT_EXIST otherwise."""
        out_trade_no = str(biz.get("out_trade_no") or "")
        trade_no = str(biz.get("trade_no") or "")
        if not out_trade_no and not trade_no:
            raise BizError(
                "ACQ.INVALID_PARAMETER", "参数无效: out_trade_no 和 trade_no 不能同时为空"
            )
        key = out_trade_no or self._by_trade_no.get(trade_no, "")
        trade = self.trades.get(key)
        if trade is None or (trade_no and trade.trade_no != trade_no):
            raise BizError("ACQ.TRADE_NOT_EXIST", "交易不存在")
        trade.settle_expiry()
        return trade

    def create(self, biz: dict[str, Any], notify_url: str | None) -> dict[str, Any]:
        """alipay.trade.create: a WAIT_BUYER_PAY trade (repeat with same content: same trade)."""
        buyer_id = str(biz.get("buyer_id") or "") or None
        buyer_open_id = str(biz.get("buyer_open_id") or "") or None
        _need(biz, "out_trade_no")
        _amount(biz, "total_amount")
        _need(biz, "subject")
        if not buyer_id and not buyer_open_id:
            _need(biz, "buyer_open_id")
        trade = self.open(biz, notify_url, buyer_id=buyer_id, buyer_open_id=buyer_open_id)
        return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}

    def open(
        self,
        biz: dict[str, Any],
        notify_url: str | None,
        *,
        buyer_id: str | None = None,
        buyer_open_id: str | None = None,
        product_code: str = "JSAPI_PAY",
    ) -> Trade:
        """The waiting trade of out_trade_no: new, or the same one for the same amount."""
        out_trade_no = _need(biz, "out_trade_no")
        total = _amount(biz, "total_amount")
        subject = _need(biz, "subject")
        expires_at = None
        if biz.get("time_expire"):
            try:
                expires_at = crypto.parse_time(str(biz["time_expire"]))
            except ValueError:
                raise BizError("ACQ.INVALID_PARAMETER", "参数无效: time_expire 格式错误") from None
        existing = self.trades.get(out_trade_no)
        if existing is not None:
            existing.settle_expiry()
            if existing.status == SUCCESS:
                raise BizError("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.status == CLOSED:
                raise BizError("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.total_fen != total:
                raise BizError("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return existing
        trade = Trade(
            out_trade_no=out_trade_no,
            trade_no=new_trade_no(),
            total_fen=total,
            subject=subject,
            buyer_id=buyer_id,
            buyer_open_id=buyer_open_id,
            notify_url=notify_url,
            created_at=clock.now(),
            expires_at=expires_at,
            product_code=product_code,
        )
        trade.settle_expiry()
        self.trades[out_trade_no] = trade
        self._by_trade_no[trade.trade_no] = out_trade_no
        return trade

    def query(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.query."""
        trade = self.find(biz)
        node: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "san***@sandbox.com",
            "trade_status": trade.status,
            "total_amount": crypto.amount(trade.total_fen),
        }
        if trade.paid_at is not None:
            node["buyer_pay_amount"] = crypto.amount(trade.total_fen)
            node["receipt_amount"] = crypto.amount(trade.total_fen)
            node["send_pay_date"] = crypto.wire_time(trade.paid_at)
            node["buyer_user_id"] = trade.buyer_id or SANDBOX_BUYER_ID
        return node

    def close(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.close: only an unpaid trade."""
        trade = self.find(biz)
        if trade.status != WAIT:
            raise BizError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status = CLOSED
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def refund(self, biz: dict[str, Any]) -> tuple[dict[str, Any], Trade, Refund | None]:
        """alipay.trade.refund; the node, the trade and the new refund (None on a repeat)."""
        amount = _amount(biz, "refund_amount")
        trade = self.find(biz)
        out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        repeat = trade.refunds.get(out_request_no)
        new: Refund | None = None
        if repeat is not None:
            if repeat.amount_fen != amount:
                raise BizError("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
        else:
            if trade.status != SUCCESS:
                raise BizError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.refunded_fen + amount > trade.total_fen:
                raise BizError("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            new = Refund(out_request_no, amount, str(biz.get("refund_reason") or ""), clock.now())
            trade.refunds[out_request_no] = new
            if trade.refunded_fen == trade.total_fen:
                trade.status = CLOSED
        done = repeat or new
        assert done is not None
        node = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "san***@sandbox.com",
            "fund_change": "Y" if new is not None else "N",
            "refund_fee": crypto.amount(trade.refunded_fen),
            "gmt_refund_pay": crypto.wire_time(done.refunded_at),
            "buyer_user_id": trade.buyer_id or SANDBOX_BUYER_ID,
        }
        return node, trade, new

    def refund_query(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.fastpay.refund.query: empty of refund fields when there is none."""
        trade = self.find(biz)
        out_request_no = _need(biz, "out_request_no")
        node: dict[str, Any] = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
        refund = trade.refunds.get(out_request_no)
        if refund is not None:
            node.update(
                out_request_no=out_request_no,
                total_amount=crypto.amount(trade.total_fen),
                refund_amount=crypto.amount(refund.amount_fen),
                refund_status="REFUND_SUCCESS",
                gmt_refund_pay=crypto.wire_time(refund.refunded_at),
            )
        return node
