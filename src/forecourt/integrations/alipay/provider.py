"""`PaymentProvider` for Alipay: mini-program (alipay.trade.create + my.tradePay) and mobile
web / H5 (alipay.trade.wap.pay, a signed URL the payer's browser opens)."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from forecourt.integrations.alipay import crypto
from forecourt.integrations.alipay.bill import parse_bill
from forecourt.integrations.alipay.client import AlipayClient
from forecourt.payment.providers import (
    BillRow,
    InvalidNotification,
    NotificationAck,
    PrepayRequest,
    PrepayResult,
    ProviderError,
    ProviderName,
    ProviderNotification,
    RefundRequest,
    RefundResult,
    TradeState,
    TradeStatus,
)

NOTIFY_REQUIRED = (
    "notify_id",
    "notify_type",
    "app_id",
    "out_trade_no",
    "trade_no",
    "trade_status",
    "total_amount",
)
PAID = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})


def _state(node: Mapping[str, Any]) -> TradeState:
    status = node.get("trade_status")
    if status in PAID:
        return "paid"
    if status == "TRADE_CLOSED":
        # Alipay closes a trade once it is fully refunded; it had been paid then.
        return "refunded" if node.get("send_pay_date") else "closed"
    return "pending"


def origin(url: str) -> str:
    """`scheme://host[:port]/` of an absolute URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


class AlipayProvider:
    """Alipay through `AlipayClient`; `cashier_base` set when the gateway is the sandbox.

    `return_url` (set by the runtime to the H5 result page) is where Alipay sends the browser
    after an H5 payment (`return_url`) or when the payer quits (`quit_url`). Unset: no
    `return_url`, and `quit_url` is the origin of the notify URL.
    """

    name = ProviderName.ALIPAY

    def __init__(self, client: AlipayClient, *, cashier_base: str | None = None) -> None:
        self.client = client
        self.merchant_id = client.app_id
        self.cashier_base = cashier_base
        self.return_url: str | None = None
        # alipay.trade.fastpay.refund.query needs the trade; refunds made by this process.
        self._refund_trades: dict[str, str] = {}

    async def prepay(self, request: PrepayRequest) -> PrepayResult:
        """Without `payer_id`: H5 `{"pay_url"}`; else alipay.trade.create `{"tradeNO"}`."""
        if request.payer_id is None:
            return self._wap(request)
        node = await self.client.trade_create(
            out_trade_no=request.out_trade_no,
            amount_fen=request.amount_fen,
            subject=request.description,
            notify_url=request.notify_url,
            expires_at=request.expires_at,
            buyer=request.payer_id,
        )
        trade_no = str(node.get("trade_no") or "")
        if not trade_no:
            raise ProviderError("INVALID_RESPONSE", "alipay.trade.create without trade_no")
        params = {"tradeNO": trade_no}
        if self.cashier_base:
            query = urlencode({"out_trade_no": request.out_trade_no})
            params["cashier_url"] = f"{self.cashier_base}/sandbox/cashier?{query}"
        return PrepayResult(provider_ref=trade_no, client_params=params)

    def _wap(self, request: PrepayRequest) -> PrepayResult:
        """alipay.trade.wap.pay: no call; Alipay creates the trade when the browser opens it."""
        url = self.client.wap_pay_url(
            out_trade_no=request.out_trade_no,
            amount_fen=request.amount_fen,
            subject=request.description,
            notify_url=request.notify_url,
            expires_at=request.expires_at,
            quit_url=self.return_url or origin(request.notify_url),
            return_url=self.return_url,
        )
        # No trade_no exists before the payer opens the page: our order number is the ref.
        return PrepayResult(provider_ref=request.out_trade_no, client_params={"pay_url": url})

    async def query(
        self, out_trade_no: str, *, requested_at: datetime | None = None
    ) -> TradeStatus:
        """alipay.trade.query; a trade Alipay does not know is still pending."""
        try:
            node = await self.client.trade_query(out_trade_no)
        except ProviderError as exc:
            if exc.code == "ACQ.TRADE_NOT_EXIST":
                return TradeStatus(out_trade_no=out_trade_no, state="pending")
            raise
        paid_at = node.get("send_pay_date")
        return TradeStatus(
            out_trade_no=out_trade_no,
            state=_state(node),
            transaction_id=str(node.get("trade_no") or "") or None,
            amount_fen=crypto.fen(str(node["total_amount"])) if node.get("total_amount") else None,
            paid_at=crypto.parse_time(str(paid_at)) if paid_at else None,
        )

    async def close(self, out_trade_no: str) -> None:
        """alipay.trade.close; an unknown or already closed trade counts as closed."""
        try:
            await self.client.trade_close(out_trade_no)
        except ProviderError as exc:
            if exc.code == "ACQ.TRADE_NOT_EXIST":
                return
            if exc.code == "ACQ.TRADE_STATUS_ERROR":
                status = await self.query(out_trade_no)
                if status.state == "closed":
                    return
                raise ProviderError("TRADE_NOT_CLOSABLE", f"trade is {status.state}") from exc
            raise

    async def refund(self, request: RefundRequest) -> RefundResult:
        """alipay.trade.refund (synchronous); a repeat (fund_change N) is confirmed by query."""
        self._refund_trades[request.out_refund_no] = request.out_trade_no
        node = await self.client.trade_refund(
            out_trade_no=request.out_trade_no,
            refund_fen=request.refund_fen,
            out_request_no=request.out_refund_no,
            reason=request.reason,
        )
        if node.get("fund_change") == "Y":
            return RefundResult(
                out_refund_no=request.out_refund_no,
                refund_id=None,
                state="succeeded",
                amount_fen=request.refund_fen,
            )
        return await self.query_refund(request.out_refund_no, out_trade_no=request.out_trade_no)

    async def query_refund(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str | None = None,
        requested_at: datetime | None = None,
    ) -> RefundResult:
        """alipay.trade.fastpay.refund.query; Alipay needs the trade, known from `refund`."""
        trade = out_trade_no or self._refund_trades.get(out_refund_no)
        if trade is None:
            raise ProviderError("UNKNOWN_REFUND", f"trade of refund {out_refund_no} unknown")
        node = await self.client.refund_query(out_trade_no=trade, out_request_no=out_refund_no)
        if not node.get("refund_amount"):
            # Alipay: nothing found means the refund did not happen; it may be retried.
            return RefundResult(out_refund_no, None, "failed", 0)
        ok = node.get("refund_status") in (None, "", "REFUND_SUCCESS")
        return RefundResult(
            out_refund_no=out_refund_no,
            refund_id=None,
            state="succeeded" if ok else "processing",
            amount_fen=crypto.fen(str(node["refund_amount"])),
        )

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        """Verify a `trade_status_sync` form; refunds carry out_biz_no and refund_fee."""
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidNotification("notification is not a UTF-8 form") from exc
        fields = dict(pairs)
        if len(fields) != len(pairs):
            raise InvalidNotification("repeated notification field")
        if not fields.get("sign") or not self.client.verify_notification(fields):
            raise InvalidNotification("notification signature does not verify")
        missing = [name for name in NOTIFY_REQUIRED if not fields.get(name)]
        if missing:
            raise InvalidNotification(f"notification without {missing[0]}")
        if fields["notify_type"] != "trade_status_sync":
            raise InvalidNotification(f"unexpected notify_type {fields['notify_type']}")
        raw = {k: v for k, v in fields.items() if k not in ("sign", "sign_type")}
        try:
            if fields.get("out_biz_no") and fields.get("refund_fee"):
                return ProviderNotification(
                    kind="refund",
                    event_id=fields["notify_id"],
                    merchant_id=fields["app_id"],
                    out_trade_no=fields["out_trade_no"],
                    transaction_id=fields["trade_no"],
                    amount_fen=crypto.fen(fields["refund_fee"]),  # cumulative, as Alipay sends
                    succeeded=True,
                    occurred_at=crypto.parse_time(
                        fields.get("gmt_refund") or fields["notify_time"]
                    ),
                    out_refund_no=fields["out_biz_no"],
                    raw=raw,
                )
            moment = fields.get("gmt_payment")
            return ProviderNotification(
                kind="payment",
                event_id=fields["notify_id"],
                merchant_id=fields["app_id"],
                out_trade_no=fields["out_trade_no"],
                transaction_id=fields["trade_no"],
                amount_fen=crypto.fen(fields["total_amount"]),
                succeeded=fields["trade_status"] in PAID,
                occurred_at=crypto.parse_time(moment) if moment else None,
                raw=raw,
            )
        except (KeyError, ValueError) as exc:
            raise InvalidNotification(f"malformed notification field: {exc}") from exc

    def acknowledge(self, ok: bool) -> NotificationAck:
        """Alipay stops resending only on the plain text `success`."""
        return NotificationAck(
            status=200, body=b"success" if ok else b"fail", media_type="text/plain"
        )

    async def bill(self, bill_date: date) -> list[BillRow]:
        """Download the day's trade bill ZIP and parse its detail file."""
        url = await self.client.bill_download_url(bill_date)
        archive = await self.client.download(url)
        try:
            return parse_bill(archive)
        except (ValueError, KeyError, zipfile.BadZipFile, csv.Error) as exc:
            raise ProviderError("INVALID_BILL", f"bill file unreadable: {exc}") from exc
