"""Alipay's daily trade bill: a ZIP of GBK CSV files; the detail file parsed into `BillRow`s.

The detail file (`<pid>_<yyyyMMdd>_业务明细.csv`) has `#` comment lines around a header and
one line per trade (业务类型 交易) or refund (业务类型 退款, negative amounts, 退款批次号/请求号
= out_request_no). Id columns carry a trailing tab (so spreadsheets keep them as text).
"""

from __future__ import annotations

import csv
import io
import zipfile

from forecourt.integrations.alipay import crypto
from forecourt.payment.providers import BillRow

DETAIL_HEADER = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
)
PAYMENT = "交易"
REFUND = "退款"


def _norm(name: str) -> str:
    return name.strip().replace("（", "(").replace("）", ")")


def _detail_text(archive: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for info in zf.infolist():
            text = zf.read(info).decode("gbk")
            if "支付宝交易号" in text and "业务类型" in text and "汇总" not in info.filename:
                return text
    raise ValueError("bill archive has no detail file")


def parse_bill(archive: bytes) -> list[BillRow]:
    """The payment and refund lines of a bill ZIP (other 业务类型 are skipped)."""
    lines = [ln for ln in _detail_text(archive).splitlines() if ln and not ln.startswith("#")]
    reader = csv.reader(lines)
    header = [_norm(h) for h in next(reader)]
    rows: list[BillRow] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        line = dict(zip(header, (c.strip() for c in cells), strict=False))
        kind = line.get("业务类型")
        if kind not in (PAYMENT, REFUND):
            continue
        moment = crypto.parse_time(line.get("完成时间") or line["创建时间"])
        amount = abs(crypto.fen(line["订单金额(元)"]))
        if kind == PAYMENT:
            rows.append(
                BillRow(
                    kind="payment",
                    out_trade_no=line["商户订单号"],
                    transaction_id=line["支付宝交易号"],
                    amount_fen=amount,
                    occurred_at=moment,
                )
            )
        else:
            rows.append(
                BillRow(
                    kind="refund",
                    out_trade_no=line["商户订单号"],
                    transaction_id=line["支付宝交易号"],
                    amount_fen=amount,
                    occurred_at=moment,
                    out_refund_no=line.get("退款批次号/请求号") or None,
                )
            )
    return rows
