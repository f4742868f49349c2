"""The sandbox's checks of a requestBillingNew `order`, as the platform makes them.

Amounts are checked with Decimal on the strings sent (not with our own fen maths): the line
tax within 0.06 of taxExcludedAmount * taxRate, the invoice within 1.27, price * num within
0.01 of taxIncludedAmount, and taxIncludedAmount = taxExcludedAmount + tax exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from forecourt.invoice import taxid

LINE_TOLERANCE = Decimal("0.06")
INVOICE_TOLERANCE = Decimal("1.27")
PRICE_TOLERANCE = Decimal("0.01")
OIL_UNITS = ("升", "吨")
OIL_CODE_PREFIX = "10701"  # 成品油 in the goods and services tax-code table
_GOODS_NAME = re.compile(r"^\*([^*]+)\*(.+)$")
_AMOUNT = re.compile(r"^-?\d+(\.\d{1,2})?$")
_NUMBER = re.compile(r"^-?\d+(\.\d{1,8})?$")


class WireError(Exception):
    """An answer with an error code (HTTP 200, as the platform answers business errors)."""

    def __init__(self, code: str, describe: str) -> None:
        super().__init__(f"{code}: {describe}")
        self.code = code
        self.describe = describe


def param_error(describe: str) -> WireError:
    """The platform's generic parameter error."""
    return WireError("E9101", describe)


@dataclass(frozen=True)
class Line:
    """A checked invoice line."""

    goods_name: str
    short_name: str
    goods_code: str
    unit: str
    num: Decimal
    price: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class Order:
    """A checked order."""

    raw: dict[str, Any]
    order_no: str
    red: bool
    refined_oil: bool
    lines: tuple[Line, ...]

    @property
    def total(self) -> Decimal:
        """Sum of the tax-inclusive line amounts."""
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def litres(self) -> Decimal:
        """Refined oil in litres (negative on a red invoice)."""
        return sum((line.num for line in self.lines if line.unit == "升"), Decimal(0))


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise param_error(f"{key} 必须为字符串")
    if required and not value.strip():
        raise param_error(f"{key} 不能为空")
    return value


def _decimal(data: dict[str, Any], key: str, pattern: re.Pattern[str], where: str) -> Decimal:
    value = data.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise param_error(f"{where}{key} 格式错误")
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise param_error(f"{where}{key} 格式错误") from exc


def _line(item: Any, index: int, *, red: bool, oil: bool) -> Line:
    where = f"第{index}行"
    if not isinstance(item, dict):
        raise param_error(f"{where}明细格式错误")
    name = _text(item, "goodsName")
    match = _GOODS_NAME.match(name)
    if match is None:
        raise param_error(f"{where}商品名称须带税收分类简称，如 *汽油*92号车用汽油")
    code = _text(item, "goodsCode")
    if len(code) != 19 or not code.isdigit():
        raise param_error(f"{where}商品编码须为19位数字")
    if item.get("withTaxFlag") != "1":
        raise param_error(f"{where}仅支持含税开票 withTaxFlag=1")
    rate = _decimal(item, "taxRate", _NUMBER, where)
    num = _decimal(item, "num", _NUMBER, where) if item.get("num") not in (None, "") else None
    price = _decimal(item, "price", _NUMBER, where) if item.get("price") not in (None, "") else None
    unit = _text(item, "unit", required=False)
    is_oil = code.startswith(OIL_CODE_PREFIX)
    if oil and not is_oil:
        raise WireError("E9203", f"{where}成品油发票只能开具成品油商品")
    if is_oil:
        if unit not in OIL_UNITS:
            raise WireError("E9201", f"{where}成品油单位必须为升或吨")
        if num is None or num == 0 or price is None:
            raise WireError("E9202", f"{where}成品油数量、单价不能为空")
        if rate != Decimal("0.13"):
            raise param_error(f"{where}成品油税率应为13%")
    net = _decimal(item, "taxExcludedAmount", _AMOUNT, where)
    tax = _decimal(item, "tax", _AMOUNT, where)
    total = _decimal(item, "taxIncludedAmount", _AMOUNT, where)
    if (total < 0) != red or total == 0 or (num is not None and (num < 0) != red):
        raise param_error(f"{where}金额、数量的正负与发票类型不符")
    if net + tax != total:
        raise param_error(f"{where}价税合计不等于金额加税额")
    if abs(net * rate - tax) > LINE_TOLERANCE:
        raise WireError("E9204", f"{where}税额误差超过0.06元")
    if num is not None and price is not None and abs(price * num - total) > PRICE_TOLERANCE:
        raise param_error(f"{where}单价乘数量与金额误差超过0.01元")
    return Line(
        name, match.group(1), code, unit, num or Decimal(0), price or Decimal(0), net, tax, total
    )


def order(payload: Any, *, user_tax: str) -> Order:
    """Check a requestBillingNew body; WireError naming the first problem."""
    if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
        raise param_error("缺少 order")
    data: dict[str, Any] = payload["order"]
    for key in ("buyerName", "salerTaxNum", "orderNo", "invoiceDate", "clerk"):
        _text(data, key)
    if data["salerTaxNum"] != user_tax:
        raise WireError("E9102", "销方税号与 userTax 不一致")
    order_no = data["orderNo"]
    if len(order_no) > 20:
        raise param_error("orderNo 长度不能超过20")
    buyer_tax = _text(data, "buyerTaxNum", required=False).strip()
    personal = data.get("naturalPersonFlag") == "1"
    if buyer_tax:
        check = taxid.validate(buyer_tax)
        if not check.valid:
            raise WireError("E9103", f"购方税号校验失败：{check.reason}")
    elif not personal:
        raise WireError("E9103", "购方税号不能为空（非自然人）")
    invoice_type = data.get("invoiceType")
    if invoice_type not in ("1", "2"):
        raise param_error("invoiceType 只能为 1 或 2")
    if data.get("invoiceLine") not in ("pc", "bs"):
        raise param_error("invoiceLine 只能为 pc 或 bs（数电票）")
    red = invoice_type == "2"
    if red and (not _text(data, "invoiceNum") or data.get("redReason") not in ("1", "2", "3", "4")):
        raise param_error("红票须填写原蓝票号码 invoiceNum 与红冲原因 redReason")
    oil = data.get("specificFactor") == "1"
    items = data.get("invoiceDetail")
    if not isinstance(items, list) or not 1 <= len(items) <= 2000:
        raise param_error("invoiceDetail 须为1-2000行")
    lines = tuple(_line(item, i, red=red, oil=oil) for i, item in enumerate(items, start=1))
    net = sum((line.net for line in lines), Decimal(0))
    tax = sum((line.tax for line in lines), Decimal(0))
    if abs(net * Decimal("0.13") - tax) > INVOICE_TOLERANCE and all(
        line.goods_code.startswith(OIL_CODE_PREFIX) for line in lines
    ):
        raise WireError("E9205", "整张发票税额误差超过1.27元")
    return Order(raw=data, order_no=order_no, red=red, refined_oil=oil, lines=lines)
