"""What the Nuonuo sandbox remembers: invoices, numbers and callback deliveries."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forecourt.integrations.nuonuo.sandbox.validate import Order
from forecourt.kit import clock

_serials = itertools.count(secrets.randbelow(500))
_numbers = itertools.count(1 + secrets.randbelow(10**6))


def new_serial(now: datetime) -> str:
    """invoiceSerialNum: 20 digits, yyyyMMddHHmmssSSS + a 3-digit counter."""
    local = clock.local(now)
    return f"{local:%Y%m%d%H%M%S}{local.microsecond // 1000:03d}{next(_serials) % 1000:03d}"


def new_number(now: datetime) -> str:
    """A 数电票 number: 20 digits, yy + region 53 + channel 2 + a 15-digit sequence."""
    return f"{clock.local(now):%y}532{next(_numbers):015d}"


def _amount(value: Any) -> str:
    return f"{value:.2f}"


@dataclass
class Invoice:
    """One submitted invoice and its outcome."""

    serial: str
    seller: str
    order: Order
    callback_url: str | None
    submitted_at: datetime
    status: str = "20"  # 20 开票中, 2 开票完成, 22 开票失败
    number: str | None = None
    issued_at: datetime | None = None
    fail_cause: str | None = None
    reversed_by: str | None = None  # serial of the red invoice reversing it
    quota_ml: int = 0  # refined oil drawn from (blue) or given back to (red) the quota

    @property
    def order_no(self) -> str:
        """Our order number."""
        return self.order.order_no

    def qr_code(self) -> str | None:
        """The QR content of an issued 数电票: 01,32,,number,amount,date,,check."""
        if self.number is None or self.issued_at is None:
            return None
        day = clock.local(self.issued_at).strftime("%Y%m%d")
        body = f"01,32,,{self.number},{_amount(self.order.total)},{day}"
        check = hashlib.sha256(body.encode()).hexdigest()[:4].upper()
        return f"{body},,{check}"

    def row(self) -> dict[str, Any]:
        """A queryInvoiceResult row."""
        data = self.order.raw
        net = sum(line.net for line in self.order.lines)
        tax = sum(line.tax for line in self.order.lines)
        messages = {"2": "开票完成（最终状态）", "20": "开票中", "22": "开票失败"}
        return {
            "serialNo": self.serial,
            "orderNo": self.order_no,
            "status": self.status,
            "statusMsg": messages.get(self.status, ""),
            "failCause": self.fail_cause or "",
            "invoiceTime": int(self.issued_at.timestamp() * 1000) if self.issued_at else None,
            "invoiceCode": "",
            "invoiceNo": self.number or "",
            "allElectronicInvoiceNumber": self.number or "",
            "invoiceType": data.get("invoiceType"),
            "invoiceLine": data.get("invoiceLine"),
            "exTaxAmount": _amount(net),
            "taxAmount": _amount(tax),
            "orderAmount": _amount(self.order.total),
            "payerName": data.get("buyerName"),
            "payerTaxNo": data.get("buyerTaxNum", ""),
            "salerName": "",
            "salerTaxNum": self.seller,
            "qrCode": self.qr_code() or "",
            "pdfUrl": "",
        }

    def callback_content(self) -> dict[str, Any]:
        """The `content` JSON of the result callback."""
        return {
            "c_orderno": self.order_no,
            "c_fpqqlsh": self.serial,
            "c_status": self.status,
            "c_msg": self.fail_cause or "开票成功",
            "c_fphm": self.number or "",
            "c_fpdm": "",
            "c_kprq": int(self.issued_at.timestamp() * 1000) if self.issued_at else "",
            "c_bhsje": _amount(sum(line.net for line in self.order.lines)),
            "c_hjse": _amount(sum(line.tax for line in self.order.lines)),
            "c_taxnum": self.seller,
        }


@dataclass(frozen=True)
class Delivery:
    """One callback attempt."""

    serial: str
    url: str
    attempt: int
    status: int | None
    error: str | None
