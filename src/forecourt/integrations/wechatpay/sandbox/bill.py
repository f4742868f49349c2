"""The daily trade bill (对账单) as WeChat Pay writes it: backtick-prefixed CSV, yuan amounts."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from forecourt.integrations.wechatpay.client import (
    BILL_COLUMNS,
    BILL_SUMMARY_COLUMNS,
    BILL_TIME_FORMAT,
    fen_to_yuan,
    yuan_to_fen,
)
from forecourt.integrations.wechatpay.sandbox import controls, validate
from forecourt.integrations.wechatpay.sandbox.identity import WireError
from forecourt.integrations.wechatpay.sandbox.state import Order, Refund
from forecourt.kit import clock

FEE_PER_MILLE = 6  # 0.60 %
DOWNLOAD_TTL = timedelta(seconds=30)


def fee(amount: int) -> int:
    """WeChat's 0.6 % fee on `amount` fen, rounded half up to the fen."""
    return (amount * FEE_PER_MILLE + 500) // 1000


def _on(moment: datetime | None, day: date) -> bool:
    return moment is not None and clock.local(moment).date() == day


def _stamp(moment: datetime) -> str:
    return clock.local(moment).strftime(BILL_TIME_FORMAT)


def render(
    *,
    appid: str,
    mchid: str,
    day: date,
    orders: Iterable[Order],
    refunds: Iterable[Refund],
    bill_type: str = "ALL",
) -> bytes | None:
    """The bill of `day` (Asia/Shanghai) as CSV bytes, or None when nothing happened."""
    lines: list[tuple[datetime, dict[str, str], int]] = []  # (time, fields, fee fen)
    if bill_type in ("ALL", "SUCCESS"):
        for o in orders:
            if o.success_time is None or o.transaction_id is None or not _on(o.success_time, day):
                continue
            total = fen_to_yuan(o.total)
            fields = {
                "交易时间": _stamp(o.success_time),
                "微信订单号": o.transaction_id,
                "商户订单号": o.out_trade_no,
                "用户标识": o.openid or "",
                "交易类型": o.trade_type,
                "交易状态": "SUCCESS",
                "应结订单金额": total,
                "商品名称": o.description,
                "商户数据包": o.attach or "",
                "订单金额": total,
            }
            lines.append((o.success_time, fields, fee(o.total)))
    if bill_type in ("ALL", "REFUND"):
        for r in refunds:
            if r.status != "SUCCESS" or r.success_time is None or not _on(r.success_time, day):
                continue
            amount = fen_to_yuan(r.amount)
            fields = {
                "交易时间": _stamp(r.success_time),
                "微信订单号": r.order.transaction_id or "",
                "商户订单号": r.order.out_trade_no,
                "用户标识": r.order.openid or "",
                "交易类型": r.order.trade_type,
                "交易状态": "REFUND",
                "微信退款单号": r.refund_id,
                "商户退款单号": r.out_refund_no,
                "退款金额": amount,
                "退款类型": "ORIGINAL",
                "退款状态": "SUCCESS",
                "商品名称": r.order.description,
                "商户数据包": r.order.attach or "",
                "申请退款金额": amount,
            }
            lines.append((r.success_time, fields, -fee(r.amount)))
    if not lines:
        return None
    lines.sort(key=lambda line: line[0])
    defaults = {
        "公众账号ID": appid,
        "商户号": mchid,
        "特约商户号": "0",
        "设备号": "",
        "付款银行": "OTHERS",
        "货币种类": "CNY",
        "应结订单金额": "0.00",
        "代金券金额": "0.00",
        "微信退款单号": "0",
        "商户退款单号": "0",
        "退款金额": "0.00",
        "充值券退款金额": "0.00",
        "退款类型": "",
        "退款状态": "",
        "费率": "0.60%",
        "订单金额": "0.00",
        "申请退款金额": "0.00",
        "费率备注": "",
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BILL_COLUMNS)
    sums = dict.fromkeys(("settle", "refund", "fee", "order", "applied"), 0)
    for _, fields, fee_fen in lines:
        row = {**defaults, **fields, "手续费": fen_to_yuan(fee_fen)}
        writer.writerow(["`" + row[name] for name in BILL_COLUMNS])
        sums["settle"] += yuan_to_fen(row["应结订单金额"])
        sums["refund"] += yuan_to_fen(row["退款金额"])
        sums["fee"] += fee_fen
        sums["order"] += yuan_to_fen(row["订单金额"])
        sums["applied"] += yuan_to_fen(row["申请退款金额"])
    writer.writerow(BILL_SUMMARY_COLUMNS)
    summary = [
        str(len(lines)),
        fen_to_yuan(sums["settle"]),
        fen_to_yuan(sums["refund"]),
        "0.00",
        fen_to_yuan(sums["fee"]),
        fen_to_yuan(sums["order"]),
        fen_to_yuan(sums["applied"]),
    ]
    writer.writerow(["`" + value for value in summary])
    return out.getvalue().encode()


class BillDesk:
    """The two bill endpoints: apply (signed answer with SHA1 and URL), then download."""

    def __init__(self, mchid: str) -> None:
        self.mchid = mchid
        self._files: dict[str, tuple[datetime, bytes, bool]] = {}  # token -> (expiry, csv, gzip)

    def apply(
        self, request: Request, *, appid: str, orders: Iterable[Order], refunds: Iterable[Refund]
    ) -> dict[str, str]:
        """GET /v3/bill/tradebill: a 30-second download URL and the SHA1 of the plain file."""
        q = request.query_params
        day = validate.bill_date(q.get("bill_date"))
        bill_type = q.get("bill_type", "ALL")
        if bill_type not in ("ALL", "SUCCESS", "REFUND"):
            raise validate.param_error("bill_type 只能是 ALL、SUCCESS、REFUND")
        if q.get("tar_type") not in (None, "GZIP"):
            raise validate.param_error("tar_type 只能是 GZIP")
        now = clock.now()
        if day >= clock.local(now).date():
            raise WireError(400, "NO_STATEMENT_EXIST", "只能下载历史账单，当日账单尚未生成")
        content = render(
            appid=appid,
            mchid=self.mchid,
            day=day,
            orders=orders,
            refunds=refunds,
            bill_type=bill_type,
        )
        if content is None:
            raise WireError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        self._files = {t: v for t, v in self._files.items() if v[0] > now}
        token = secrets.token_urlsafe(24)
        self._files[token] = (now + DOWNLOAD_TTL, content, q.get("tar_type") == "GZIP")
        base = controls.request_base(request)  # the mount prefix included
        return {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
            "download_url": f"{base}/v3/billdownload/file?token={token}",
        }

    def download(self, token: str) -> Response:
        """GET /v3/billdownload/file: the raw file (gzip if asked), not signed, like WeChat."""
        entry = self._files.get(token)
        if entry is None or entry[0] <= clock.now():
            raise WireError(400, "INVALID_REQUEST", "下载地址已失效，请重新申请账单")
        _, content, gzipped = entry
        return Response(
            gzip.compress(content) if gzipped else content,
            headers={"Request-ID": secrets.token_hex(16)},
            media_type="application/octet-stream",
        )
