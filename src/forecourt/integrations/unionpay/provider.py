"""`PaymentProvider` for UnionPay: app payments (appTransReq -> `tn` for the UnionPay SDK)
and mobile-web / H5 payments (frontTransReq, a signed form the payer's browser submits).

UnionPay queries name a transaction by orderId *and* the txnTime it was sent with; this
adapter remembers the txnTime of the orders and refunds it sent (in memory), and callers may
pass `txn_time` explicitly. Refund requests carry the original orderId in `reqReserved`,
which UnionPay echoes in the refund notification.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from datetime import date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

from forecourt.integrations.unionpay import crypto, settlement
from forecourt.integrations.unionpay.client import PROCESSING, UnionPayClient
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
    RefundState,
    TradeStatus,
)

NOT_FOUND = "34"
DUPLICATE = "12"
NOTIFY_REQUIRED = ("respCode", "merId", "orderId", "txnType", "txnTime", "txnAmt", "queryId")


def origin(url: str) -> str:
    """`scheme://host[:port]/` of an absolute URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


class UnionPayProvider:
    """UnionPay through `UnionPayClient`; `cashier_base` set when the gateway is the sandbox.

    `return_url` (set by the runtime) is the H5 payment's `frontUrl`: where UnionPay POSTs
    the payer's browser (auto-submitted form) after paying. Unset: the notify URL's origin.
    """

    name = ProviderName.UNIONPAY

    def __init__(self, client: UnionPayClient, *, cashier_base: str | None = None) -> None:
        self.client = client
        self.merchant_id = client.mer_id
        self.cashier_base = cashier_base
        self.return_url: str | None = None
        self._txn_times: dict[str, str] = {}  # orderId -> txnTime (orders and refunds sent)
        self._refund_orders: dict[str, str] = {}  # refund orderId -> consume orderId

    def _txn_time(self, order_id: str, given: str | None) -> str:
        txn_time = given or self._txn_times.get(order_id)
        if txn_time is None:
            raise ProviderError(
                "UNKNOWN_TXN_TIME", f"txnTime of {order_id} unknown to this process"
            )
        return txn_time

    def _cashier(self, out_trade_no: str) -> dict[str, str]:
        if not self.cashier_base:
            return {}
        query = urlencode({"out_trade_no": out_trade_no})
        return {"cashier_url": f"{self.cashier_base}/sandbox/cashier?{query}"}

    async def prepay(self, request: PrepayRequest) -> PrepayResult:
        """Without `payer_id`: H5 `{"form_action", "form_fields"}`; else app `{"tn"}`."""
        txn_time = crypto.wire_time(request.requested_at)
        if request.payer_id is None:
            return self._front(request, txn_time)
        answer = await self.client.consume(
            order_id=request.out_trade_no,
            txn_time=txn_time,
            amount_fen=request.amount_fen,
            back_url=request.notify_url,
            pay_timeout=request.expires_at,
        )
        self._txn_times[request.out_trade_no] = txn_time
        tn = answer.get("tn", "")
        if not tn:
            raise ProviderError("INVALID_RESPONSE", "appTransReq answer without tn")
        return PrepayResult(
            provider_ref=tn, client_params={"tn": tn, **self._cashier(request.out_trade_no)}
        )

    def _front(self, request: PrepayRequest, txn_time: str) -> PrepayResult:
        """frontTransReq: no call; UnionPay opens the order when the browser submits the form."""
        action, fields = self.client.front_consume(
            order_id=request.out_trade_no,
            txn_time=txn_time,
            amount_fen=request.amount_fen,
            front_url=self.return_url or origin(request.notify_url),
            back_url=request.notify_url,
            pay_timeout=request.expires_at,
        )
        self._txn_times[request.out_trade_no] = txn_time
        params = {
            "form_action": action,
            "form_fields": json.dumps(fields, ensure_ascii=False, separators=(",", ":")),
            **self._cashier(request.out_trade_no),
        }
        return PrepayResult(provider_ref=request.out_trade_no, client_params=params)

    async def query(
        self,
        out_trade_no: str,
        *,
        requested_at: datetime | None = None,
        txn_time: str | None = None,
    ) -> TradeStatus:
        """queryTrans; 34 (not found: UnionPay lists a consume once paid) is pending."""
        if txn_time is None and requested_at is not None:
            txn_time = crypto.wire_time(requested_at)
        try:
            answer = await self.client.query(
                order_id=out_trade_no, txn_time=self._txn_time(out_trade_no, txn_time)
            )
        except ProviderError as exc:
            if exc.code == NOT_FOUND:
                return TradeStatus(out_trade_no=out_trade_no, state="pending")
            raise
        orig = answer.get("origRespCode", "")
        if orig in PROCESSING:
            return TradeStatus(out_trade_no=out_trade_no, state="pending")
        if orig != "00":
            return TradeStatus(out_trade_no=out_trade_no, state="failed")
        return TradeStatus(
            out_trade_no=out_trade_no,
            state="paid",
            transaction_id=answer.get("queryId") or None,
            amount_fen=int(answer["txnAmt"]),
            paid_at=crypto.trace_moment(answer["traceTime"], answer["txnTime"]),
        )

    async def close(self, out_trade_no: str) -> None:
        """UnionPay has no close: a tn dies at payTimeout (= expires_at). Refuses if paid."""
        if out_trade_no not in self._txn_times:
            return
        status = await self.query(out_trade_no)
        if status.state == "paid":
            raise ProviderError("TRADE_NOT_CLOSABLE", "order is paid")

    async def refund(self, request: RefundRequest) -> RefundResult:
        """backTransReq; accepted means processing (12 = already sent: answered by query)."""
        txn_time = self._txn_times.setdefault(
            request.out_refund_no, crypto.wire_time(request.requested_at)
        )
        self._refund_orders[request.out_refund_no] = request.out_trade_no
        try:
            await self.client.refund(
                order_id=request.out_refund_no,
                txn_time=txn_time,
                orig_qry_id=request.transaction_id,
                amount_fen=request.refund_fen,
                back_url=request.notify_url,
                reserved=request.out_trade_no,
            )
        except ProviderError as exc:
            if exc.code == DUPLICATE:
                return await self.query_refund(request.out_refund_no)
            raise
        return RefundResult(request.out_refund_no, None, "processing", request.refund_fen)

    async def query_refund(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str | None = None,
        requested_at: datetime | None = None,
        txn_time: str | None = None,
    ) -> RefundResult:
        """queryTrans of the refund's own orderId; not found means it did not happen."""
        if txn_time is None and requested_at is not None:
            txn_time = crypto.wire_time(requested_at)
        try:
            answer = await self.client.query(
                order_id=out_refund_no, txn_time=self._txn_time(out_refund_no, txn_time)
            )
        except ProviderError as exc:
            if exc.code == NOT_FOUND:
                return RefundResult(out_refund_no, None, "failed", 0)
            raise
        orig = answer.get("origRespCode", "")
        state: RefundState = (
            "succeeded" if orig == "00" else "processing" if orig in PROCESSING else "failed"
        )
        return RefundResult(
            out_refund_no=out_refund_no,
            refund_id=answer.get("queryId") or None,
            state=state,
            amount_fen=int(answer.get("txnAmt") or 0),
        )

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        """Verify a backUrl form (certificate chain + signature) and decode it."""
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidNotification("notification is not a UTF-8 form") from exc
        f = dict(pairs)
        if len(f) != len(pairs):
            raise InvalidNotification("repeated notification field")
        if not f.get("signature") or not self.client.trust.verify(f):
            raise InvalidNotification("notification signature or certificate not trusted")
        missing = [name for name in NOTIFY_REQUIRED if not f.get(name)]
        if missing:
            raise InvalidNotification(f"notification without {missing[0]}")
        raw = {k: v for k, v in f.items() if k not in ("signature", "signPubKeyCert")}
        try:
            moment = (
                crypto.trace_moment(f["traceTime"], f["txnTime"]) if f.get("traceTime") else None
            )
            amount = int(f["txnAmt"])
        except ValueError as exc:
            raise InvalidNotification(f"malformed notification field: {exc}") from exc
        event_id = f"{f['queryId']}-{f['txnType']}"
        succeeded = f["respCode"] in ("00", "A6")
        if f["txnType"] == "01":
            return ProviderNotification(
                kind="payment",
                event_id=event_id,
                merchant_id=f["merId"],
                out_trade_no=f["orderId"],
                transaction_id=f["queryId"],
                amount_fen=amount,
                succeeded=succeeded,
                occurred_at=moment,
                raw=raw,
            )
        if f["txnType"] == "04":
            trade = f.get("reqReserved") or self._refund_orders.get(f["orderId"])
            if not trade or not f.get("origQryId"):
                raise InvalidNotification("refund notification without its original order")
            return ProviderNotification(
                kind="refund",
                event_id=event_id,
                merchant_id=f["merId"],
                out_trade_no=trade,
                transaction_id=f["origQryId"],
                amount_fen=amount,
                succeeded=succeeded,
                occurred_at=moment,
                out_refund_no=f["orderId"],
                refund_id=f["queryId"],
                raw=raw,
            )
        raise InvalidNotification(f"unexpected txnType {f['txnType']}")

    def acknowledge(self, ok: bool) -> NotificationAck:
        """UnionPay stops resending on HTTP 200; 500 makes it resend."""
        if ok:
            return NotificationAck(status=200, body=b"ok", media_type="text/plain")
        return NotificationAck(status=500, body=b"fail", media_type="text/plain")

    async def bill(self, bill_date: date) -> list[BillRow]:
        """Download the day's settlement file (fileTransReq) and parse its flow records."""
        answer = await self.client.settlement_file(bill_date)
        try:
            return settlement.parse_file(answer.get("fileContent", ""))
        except (ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ProviderError("INVALID_BILL", f"settlement file unreadable: {exc}") from exc
