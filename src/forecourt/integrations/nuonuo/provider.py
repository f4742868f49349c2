"""`InvoiceProvider` for Nuonuo fully digitalised invoices (数电票), on top of `NuonuoClient`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

import orjson

from forecourt.integrations.nuonuo.client import DUPLICATE_ORDER_NO, NuonuoClient, NuonuoError
from forecourt.invoice.domain import litres, yuan
from forecourt.invoice.providers import (
    CallbackAck,
    CallbackNote,
    InvalidCallback,
    IssueRequest,
    IssueResult,
    IssueState,
)
from forecourt.kit import clock

# queryInvoiceResult `status`: 2 开票完成, 20 开票中, 21 开票成功签章中, 22 开票失败,
# 24 开票成功签章失败 (signed again by the platform), 3 / 31 作废 (not for 数电票).
STATES: dict[str, IssueState] = {"2": "issued", "20": "issuing", "21": "issuing", "22": "failed"}
INVOICE_LINE = "pc"  # 电子发票（普通发票）
SPECIFIC_REFINED_OIL = "1"
ACK_OK = orjson.dumps({"status": "0000", "message": "同步成功"})
ACK_FAIL = orjson.dumps({"status": "9999", "message": "同步失败"})


def to_fen(text: object) -> int | None:
    """A yuan amount string ("232.80") as fen; None when absent or unreadable."""
    if text in (None, ""):
        return None
    try:
        value = Decimal(str(text)) * 100
    except InvalidOperation:
        return None
    return int(value) if value == value.to_integral_value() else None


def invoice_date(moment: datetime) -> str:
    """`yyyy-MM-dd HH:mm:ss` in business time."""
    return clock.local(moment).strftime("%Y-%m-%d %H:%M:%S")


def order_body(request: IssueRequest) -> dict[str, Any]:
    """The `order` object of requestBillingNew."""
    personal = request.buyer_kind == "personal"
    order: dict[str, Any] = {
        "buyerName": request.buyer_name,
        "buyerTaxNum": request.buyer_tax_id or "",
        "naturalPersonFlag": "1" if personal else "0",
        "salerTaxNum": request.seller_tax_id,
        "salerAddress": request.seller_address,
        "salerTel": "",
        "orderNo": request.order_no,
        "invoiceDate": invoice_date(request.issued_at),
        "clerk": request.clerk,
        "pushMode": "-1",  # we send the PDF ourselves
        "invoiceType": "2" if request.kind == "red" else "1",
        "invoiceLine": INVOICE_LINE,
        "specificFactor": SPECIFIC_REFINED_OIL if request.refined_oil else "0",
        "invoiceDetail": [
            {
                "goodsName": line.goods_name,
                "goodsCode": line.tax_code,
                "withTaxFlag": "1",
                "price": line.unit_price,
                "num": litres(line.volume_ml),
                "unit": line.unit,
                "taxRate": line.rate,
                "tax": yuan(line.tax_fen),
                "taxExcludedAmount": yuan(line.net_fen),
                "taxIncludedAmount": yuan(line.amount_fen),
                "invoiceLineProperty": "0",
                "favouredPolicyFlag": "0",
            }
            for line in request.lines
        ],
    }
    if request.callback_url:
        order["callBackUrl"] = request.callback_url
    if request.kind == "red":
        order["invoiceNum"] = request.original_number or ""
        order["redReason"] = request.red_reason or "2"
    return order


def result_of(row: Mapping[str, Any]) -> IssueResult:
    """One queryInvoiceResult row as an `IssueResult`."""
    state = STATES.get(str(row.get("status", "")), "issuing")
    millis = row.get("invoiceTime")
    issued_at = (
        datetime.fromtimestamp(int(millis) / 1000, UTC)
        if isinstance(millis, int | str) and str(millis).isdigit()
        else None
    )
    number = row.get("allElectronicInvoiceNumber") or row.get("invoiceNo") or None
    failure = str(row.get("failCause") or row.get("statusMsg") or "") if state == "failed" else None
    return IssueResult(
        serial=str(row.get("serialNo", "")),
        order_no=str(row.get("orderNo", "")),
        state=state,
        invoice_number=str(number) if number and state == "issued" else None,
        issued_at=issued_at if state == "issued" else None,
        qr_content=str(row["qrCode"]) if row.get("qrCode") else None,
        net_fen=to_fen(row.get("exTaxAmount")),
        tax_fen=to_fen(row.get("taxAmount")),
        total_fen=to_fen(row.get("orderAmount")),
        failure=failure[:200] if failure is not None else None,
    )


class NuonuoProvider:
    """Nuonuo behind the platform's `InvoiceProvider` protocol."""

    name = "nuonuo"

    def __init__(self, client: NuonuoClient) -> None:
        self.client = client

    async def issue(self, request: IssueRequest) -> str:
        """Submit; a repeat of an order number returns the serial it got the first time."""
        try:
            return await self.client.request_billing(
                order_body(request), user_tax=request.seller_tax_id
            )
        except NuonuoError as exc:
            if exc.code != DUPLICATE_ORDER_NO:
                raise
        rows = await self.client.query_invoice_result(
            user_tax=request.seller_tax_id, order_nos=[request.order_no]
        )
        for row in rows:
            if row.get("orderNo") == request.order_no and row.get("serialNo"):
                return str(row["serialNo"])
        raise NuonuoError(DUPLICATE_ORDER_NO, "order number used before, but not found")

    async def query(self, serial: str, *, seller_tax_id: str) -> IssueResult | None:
        """The invoice's current result (None when Nuonuo does not know the serial)."""
        rows = await self.client.query_invoice_result(user_tax=seller_tax_id, serial_nos=[serial])
        for row in rows:
            if row.get("serialNo") == serial:
                return result_of(row)
        return None

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackNote:
        """`operater=callback&orderno=…&content={json}` (form-encoded)."""
        try:
            form = parse_qs(body.decode(), strict_parsing=True)
            content = orjson.loads(form["content"][0])
        except (UnicodeDecodeError, ValueError, KeyError, orjson.JSONDecodeError) as exc:
            raise InvalidCallback("not a Nuonuo invoice callback") from exc
        if form.get("operater", [""])[0] != "callback" or not isinstance(content, dict):
            raise InvalidCallback("not a Nuonuo invoice callback")
        serial, order_no = content.get("c_fpqqlsh"), content.get("c_orderno")
        if not isinstance(serial, str) or not serial or not isinstance(order_no, str):
            raise InvalidCallback("callback without c_fpqqlsh / c_orderno")
        return CallbackNote(
            serial=serial, order_no=order_no, state_hint=str(content.get("c_status"))
        )

    def acknowledge(self, ok: bool) -> CallbackAck:
        """`{"status": "0000", "message": "同步成功"}` when applied."""
        return CallbackAck(200 if ok else 500, ACK_OK if ok else ACK_FAIL)

    async def aclose(self) -> None:
        """Close the wire client."""
        await self.client.aclose()
