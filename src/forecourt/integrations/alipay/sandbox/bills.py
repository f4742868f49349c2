"""The sandbox's daily trade bill, shaped like Alipay's: a ZIP of two GBK CSV files.

Payments are listed on the business day (Asia/Shanghai) they were paid, refunds on the day
they were made; the service fee is 0.6% (rounded half up), returned pro rata on refunds.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from forecourt.integrations.alipay import crypto
from forecourt.integrations.alipay.bill import DETAIL_HEADER, PAYMENT, REFUND
from forecourt.integrations.alipay.sandbox.trades import Trade
from forecourt.kit import clock

FEE_PER_MILLE = 6
RULE = "-" * 41
SUMMARY_HEADER = ["门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）",
                  "商家实收（元）", "服务费（元）", "实收净额（元）"]  # fmt: skip


def _fee(fen: int) -> int:
    return (fen * FEE_PER_MILLE + 500) // 1000


def _cn_time(moment: datetime) -> str:
    return moment.strftime("%Y年%m月%d日 %H:%M:%S")


def _line(
    trade: Trade, kind: str, amount: int, done: datetime, request_no: str, fee: int
) -> list[str]:
    cells = [""] * len(DETAIL_HEADER)
    cells[0] = trade.trade_no + "\t"
    cells[1] = trade.out_trade_no + "\t"
    cells[2] = kind
    cells[3] = trade.subject
    cells[4] = crypto.wire_time(trade.created_at)
    cells[5] = crypto.wire_time(done)
    cells[10] = "san***@sandbox.com"
    cells[11] = crypto.amount(amount)
    cells[12] = crypto.amount(amount)
    for i in (13, 14, 15, 16, 17, 19, 20, 23):
        cells[i] = "0.00"
    cells[21] = request_no + "\t" if request_no else ""
    cells[22] = crypto.amount(fee)
    return cells


def _on(day: date, moment: datetime | None) -> bool:
    return moment is not None and clock.local(moment).date() == day


def _detail(day: date, trades: Iterable[Trade]) -> tuple[list[list[str]], int, int]:
    """The day's detail lines, and how many are payments and refunds."""
    lines: list[list[str]] = []
    paid = refunded = 0
    for trade in sorted(trades, key=lambda t: t.created_at):
        if trade.paid_at is not None and _on(day, trade.paid_at):
            fee = -_fee(trade.total_fen)
            lines.append(_line(trade, PAYMENT, trade.total_fen, trade.paid_at, "", fee))
            paid += 1
        for r in trade.refunds.values():
            if _on(day, r.refunded_at):
                amount, back = -r.amount_fen, _fee(r.amount_fen)
                lines.append(_line(trade, REFUND, amount, r.refunded_at, r.out_request_no, back))
                refunded += 1
    return lines, paid, refunded


def _csv(comments_before: list[str], rows: list[list[str]], comments_after: list[str]) -> bytes:
    out = io.StringIO()
    out.write("".join(c + "\r\n" for c in comments_before))
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    out.write("".join(c + "\r\n" for c in comments_after))
    return out.getvalue().encode("gbk")


def build_bill(pid: str, day: date, trades: Iterable[Trade]) -> bytes:
    """The ZIP archive of `day`'s bill for the merchant `pid`."""
    lines, paid, refunded = _detail(day, trades)
    total = sum(crypto.fen(line[12]) for line in lines)
    fees = sum(crypto.fen(line[22]) for line in lines)
    start = datetime(day.year, day.month, day.day)
    exported = clock.local(clock.now()).replace(tzinfo=None)
    account = f"#账号：[{pid}0156]"
    detail = _csv(
        [
            "#支付宝业务明细查询",
            account,
            f"#起始日期：[{_cn_time(start)}]   终止日期：[{_cn_time(start + timedelta(days=1))}]",
            f"#{RULE}业务明细列表{RULE}",
        ],
        [list(DETAIL_HEADER), *lines],
        [
            f"#{RULE}业务明细列表结束{RULE}",
            f"#交易合计：{paid}笔，退款合计：{refunded}笔",
            f"#导出时间：[{_cn_time(exported)}]",
        ],
    )
    amounts = [crypto.amount(v) for v in (total, total, fees, total + fees)]
    summary_row = ["", "合计", str(paid), str(refunded), *amounts]
    summary = _csv(["#支付宝业务汇总查询", account], [SUMMARY_HEADER, summary_row], [])
    stamp = day.strftime("%Y%m%d")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{pid}_{stamp}_业务明细.csv", detail)
        zf.writestr(f"{pid}_{stamp}_业务明细(汇总).csv", summary)
    return archive.getvalue()
