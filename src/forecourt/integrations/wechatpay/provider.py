"""`PaymentProvider` for WeChat Pay (JSAPI / mini-program, H5), on top of `WeChatPayClient`."""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson

from forecourt.integrations.wechatpay.client import (
    BILL_COLUMNS,
    BILL_SUMMARY_COLUMNS,
    BILL_TIME_FORMAT,
    WeChatPayClient,
    WeChatPayError,
    parse_time,
    yuan_to_fen,
)
from forecourt.kit import clock
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
    TradeState,
    TradeStatus,
)

TRADE_STATES: dict[str, TradeState] = {
    "SUCCESS": "paid",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "ACCEPT": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "REFUND": "refunded",
    "PAYERROR": "failed",
}
REFUND_STATES: dict[str, RefundState] = {
    "PROCESSING": "processing",
    "SUCCESS": "succeeded",
    "ABNORMAL": "failed",
    "CLOSED": "failed",
}
FAIL_BODY = orjson.dumps({"code": "FAIL", "message": "失败"})


def _amount(data: Mapping[str, Any], key: str) -> int:
    amount = data.get("amount")
    if not isinstance(amount, dict) or not isinstance(amount.get(key), int):
        raise ValueError(f"amount.{key} missing")
    value: int = amount[key]
    return value


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} missing")
    return value


def h5_prepay_id(h5_url: str) -> str | None:
    """The `prepay_id` query parameter of an h5_url (…/checkmweb?prepay_id=…&package=…)."""
    try:
        value = httpx.URL(h5_url).params.get("prepay_id")
    except httpx.InvalidURL:
        return None
    return value or None


def parse_trade_bill(content: bytes) -> list[BillRow]:
    """The payment and refund lines of an ALL trade bill (totals cross-checked); ValueError."""
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    if not rows or rows[0] != BILL_COLUMNS:
        raise ValueError("not a WeChat Pay ALL trade bill")
    col = {name: i for i, name in enumerate(BILL_COLUMNS)}
    try:
        end = rows.index(BILL_SUMMARY_COLUMNS)
    except ValueError as exc:
        raise ValueError("bill without summary") from exc
    result: list[BillRow] = []
    for raw in rows[1:end]:
        if len(raw) != len(BILL_COLUMNS):
            raise ValueError("bill line with a wrong number of fields")
        f = [cell.removeprefix("`") for cell in raw]
        at = datetime.strptime(f[col["交易时间"]], BILL_TIME_FORMAT).replace(
            tzinfo=clock.BUSINESS_TZ
        )
        if f[col["交易状态"]] == "REFUND" and f[col["商户退款单号"]] not in ("", "0"):
            result.append(
                BillRow(
                    kind="refund",
                    out_trade_no=f[col["商户订单号"]],
                    transaction_id=f[col["微信订单号"]],
                    amount_fen=yuan_to_fen(f[col["申请退款金额"]]),
                    occurred_at=at.astimezone(UTC),
                    out_refund_no=f[col["商户退款单号"]],
                    refund_id=f[col["微信退款单号"]],
                )
            )
        elif f[col["交易状态"]] == "SUCCESS":
            result.append(
                BillRow(
                    kind="payment",
                    out_trade_no=f[col["商户订单号"]],
                    transaction_id=f[col["微信订单号"]],
                    amount_fen=yuan_to_fen(f[col["订单金额"]]),
                    occurred_at=at.astimezone(UTC),
                )
            )
    summary = dict(
        zip(BILL_SUMMARY_COLUMNS, (c.removeprefix("`") for c in rows[end + 1]), strict=True)
    )
    paid = sum(r.amount_fen for r in result if r.kind == "payment")
    refunded = sum(r.amount_fen for r in result if r.kind == "refund")
    if (
        int(summary["总交易单数"]) != end - 1
        or yuan_to_fen(summary["订单总金额"]) != paid
        or yuan_to_fen(summary["申请退款总金额"]) != refunded
    ):
        raise ValueError("bill lines do not add up to its summary")
    return result


class WeChatPayProvider:
    """WeChat Pay behind the platform's `PaymentProvider` protocol."""

    name = ProviderName.WECHATPAY

    def __init__(self, client: WeChatPayClient) -> None:
        self.client = client
        self.merchant_id = client.mchid

    async def prepay(self, request: PrepayRequest) -> PrepayResult:
        """Open a payment: JSAPI (wx.requestPayment fields) with an openid, else H5 (h5_url).

        H5 (手机网站支付) needs the payer's IP (`request.client_ip`); its result's
        `client_params` is `{"h5_url": …}` (the browser opens it, optionally with
        `&redirect_url=<URL-encoded>` appended) and `provider_ref` the prepay_id it carries.
        """
        if request.payer_id:
            prepay_id = await self.client.prepay_jsapi(
                description=request.description,
                out_trade_no=request.out_trade_no,
                notify_url=request.notify_url,
                total_fen=request.amount_fen,
                openid=request.payer_id,
                time_expire=request.expires_at,
            )
            return PrepayResult(
                provider_ref=prepay_id, client_params=self.client.pay_params(prepay_id)
            )
        if not request.client_ip:
            raise ProviderError(
                "PARAM_ERROR", "WeChat Pay H5 needs the payer's IP (client_ip) without an openid"
            )
        try:
            ip = str(ipaddress.ip_address(request.client_ip))
        except ValueError:
            raise ProviderError(
                "PARAM_ERROR", f"WeChat Pay H5: the payer IP {request.client_ip!r} is not an IP"
            ) from None
        h5_url = await self.client.prepay_h5(
            description=request.description,
            out_trade_no=request.out_trade_no,
            notify_url=request.notify_url,
            total_fen=request.amount_fen,
            payer_client_ip=ip,
            time_expire=request.expires_at,
        )
        return PrepayResult(
            provider_ref=h5_prepay_id(h5_url) or request.out_trade_no,
            client_params={"h5_url": h5_url},
        )

    async def query(
        self, out_trade_no: str, *, requested_at: datetime | None = None
    ) -> TradeStatus:
        """The payment's current state (ORDER_NOT_EXIST raises ProviderError)."""
        data = await self.client.query_order(out_trade_no)
        state = TRADE_STATES.get(str(data.get("trade_state")))
        if state is None:
            raise WeChatPayError(
                "INVALID_RESPONSE", f"unknown trade_state {data.get('trade_state')}"
            )
        amount = data.get("amount") or {}
        total = amount.get("total") if isinstance(amount, dict) else None
        success_time = data.get("success_time")
        return TradeStatus(
            out_trade_no=str(data.get("out_trade_no", out_trade_no)),
            state=state,
            transaction_id=str(data["transaction_id"]) if data.get("transaction_id") else None,
            amount_fen=total if isinstance(total, int) else None,
            paid_at=parse_time(success_time) if isinstance(success_time, str) else None,
        )

    async def close(self, out_trade_no: str) -> None:
        """Close an unpaid payment."""
        await self.client.close_order(out_trade_no)

    @staticmethod
    def _refund_result(data: Mapping[str, Any]) -> RefundResult:
        state = REFUND_STATES.get(str(data.get("status")))
        if state is None:
            raise WeChatPayError("INVALID_RESPONSE", f"unknown refund status {data.get('status')}")
        try:
            return RefundResult(
                out_refund_no=_text(data, "out_refund_no"),
                refund_id=str(data["refund_id"]) if data.get("refund_id") else None,
                state=state,
                amount_fen=_amount(data, "refund"),
            )
        except ValueError as exc:
            raise WeChatPayError("INVALID_RESPONSE", str(exc)) from exc

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Request a refund (idempotent by out_refund_no)."""
        data = await self.client.create_refund(
            out_refund_no=request.out_refund_no,
            refund_fen=request.refund_fen,
            total_fen=request.total_fen,
            reason=request.reason,
            notify_url=request.notify_url,
            transaction_id=request.transaction_id or None,
            out_trade_no=request.out_trade_no,
        )
        return self._refund_result(data)

    async def query_refund(
        self,
        out_refund_no: str,
        *,
        out_trade_no: str | None = None,
        requested_at: datetime | None = None,
    ) -> RefundResult:
        """A refund's current state (WeChat needs only the refund number)."""
        return self._refund_result(await self.client.query_refund(out_refund_no))

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        """Verify (signature, five-minute window), decrypt and map a callback."""
        try:
            envelope, resource = self.client.open_notification(headers, body)
            event_type = _text(envelope, "event_type")
            create_time = envelope.get("create_time")
            occurred = parse_time(create_time) if isinstance(create_time, str) else None
            if event_type.startswith("TRANSACTION."):
                success_time = resource.get("success_time")
                return ProviderNotification(
                    kind="payment",
                    event_id=_text(envelope, "id"),
                    merchant_id=_text(resource, "mchid"),
                    out_trade_no=_text(resource, "out_trade_no"),
                    transaction_id=_text(resource, "transaction_id"),
                    amount_fen=_amount(resource, "total"),
                    succeeded=resource.get("trade_state") == "SUCCESS",
                    occurred_at=parse_time(success_time)
                    if isinstance(success_time, str)
                    else occurred,
                    raw=resource,
                )
            if event_type.startswith("REFUND."):
                success_time = resource.get("success_time")
                return ProviderNotification(
                    kind="refund",
                    event_id=_text(envelope, "id"),
                    merchant_id=_text(resource, "mchid"),
                    out_trade_no=_text(resource, "out_trade_no"),
                    transaction_id=_text(resource, "transaction_id"),
                    amount_fen=_amount(resource, "refund"),
                    succeeded=resource.get("refund_status") == "SUCCESS",
                    occurred_at=parse_time(success_time)
                    if isinstance(success_time, str)
                    else occurred,
                    out_refund_no=_text(resource, "out_refund_no"),
                    refund_id=_text(resource, "refund_id"),
                    raw=resource,
                )
            raise ValueError(f"unexpected event_type {event_type}")
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            raise InvalidNotification(str(exc)) from exc

    def acknowledge(self, ok: bool) -> NotificationAck:
        """204 empty stops the resends; 500 with a FAIL body asks WeChat to resend."""
        if ok:
            return NotificationAck(status=204, body=b"", media_type="application/json")
        return NotificationAck(status=500, body=FAIL_BODY, media_type="application/json")

    async def bill(self, bill_date: date) -> list[BillRow]:
        """The ALL trade bill of a past business day ([] when WeChat has no statement)."""
        if bill_date >= clock.local(clock.now()).date():
            raise ProviderError(
                "STATEMENT_NOT_READY", "bills exist only for past days", retryable=True
            )
        try:
            content = await self.client.trade_bill(bill_date)
        except WeChatPayError as exc:
            if exc.code == "NO_STATEMENT_EXIST":
                return []
            raise
        try:
            return parse_trade_bill(content)
        except (ValueError, KeyError, IndexError) as exc:
            raise WeChatPayError("INVALID_BILL", str(exc)) from exc
