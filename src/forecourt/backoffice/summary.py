"""The printable handover summary (交接班单): a plain HTML page with print CSS."""

from __future__ import annotations

from html import escape

from forecourt.backoffice.exports import when
from forecourt.backoffice.schemas import Line, ShiftOut
from forecourt.kit.money import yuan

METHOD_NAMES = {
    "wechatpay": "微信支付",
    "alipay": "支付宝",
    "unionpay": "云闪付",
    "wallet": "储值钱包",
    "cash": "现金（柜台）",
    "total": "合计",
}
CSS = """
body{font-family:"PingFang SC","Microsoft YaHei",sans-serif;margin:24px;color:#111}
h1{font-size:20px;margin:0 0 8px}h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border:1px solid #999;padding:4px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}
.meta td{border:none;text-align:left;padding:2px 8px 2px 0}
.warn{border:1px solid #c00;color:#c00;padding:6px;margin:12px 0}
.short{color:#c00}.sign{margin-top:32px}
@media print{body{margin:0}button{display:none}@page{size:A4;margin:12mm}}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _lines(title: str, lines: list[Line], total: Line | None, names: dict[str, str]) -> str:
    head = (
        f"<tr><th>{_e(title)}</th><th>笔数</th><th>油量(升)</th><th>应收(元)</th>"
        "<th>优惠(元)</th><th>退款(元)</th><th>净额(元)</th></tr>"
    )
    body = "".join(
        f"<tr><td>{_e(names.get(line.key, line.key or '—'))}</td><td>{line.orders}</td>"
        f"<td>{line.volume_ml / 1000:.2f}</td><td>{yuan(line.gross_fen)}</td>"
        f"<td>{yuan(line.discounts_fen)}</td><td>{yuan(line.refunds_fen)}</td>"
        f"<td>{yuan(line.net_fen)}</td></tr>"
        for line in [*lines, *([total] if total else [])]
    )
    return f"<table>{head}{body}</table>"


def render(shift: ShiftOut) -> str:
    """The handover summary of a shift as a complete HTML document."""
    t = shift.totals
    grades = {line.key: f"{line.key}#" for line in t.by_grade if line.key}
    over = shift.over_short_fen
    over_text = (
        "—"
        if over is None
        else ("长款 " if over > 0 else "短款 " if over < 0 else "")
        + (f"¥{yuan(abs(over))}" if over else "平")
    )
    warn = "".join(f'<div class="warn">⚠ {_e(w)}</div>' for w in shift.warnings)
    unpaid = "".join(
        f"<tr><td>{s.fp}</td><td>{s.seq}</td><td>{s.nozzle}</td><td>{_e(s.grade)}#</td>"
        f"<td>{yuan(s.amount_fen)}</td><td>{_e(when(s.ended_at))}</td></tr>"
        for s in shift.unpaid_sales.items
    )
    unpaid_table = (
        "<h2>未付款加油记录</h2><table><tr><th>油机点</th><th>流水号</th><th>枪号</th>"
        f"<th>油品</th><th>金额(元)</th><th>结束时间</th></tr>{unpaid}</table>"
        if unpaid
        else ""
    )
    status = "已交班" if shift.status == "closed" else "进行中"
    counted = "—" if shift.cash_counted_fen is None else f"¥{yuan(shift.cash_counted_fen)}"
    expected = "—" if shift.cash_expected_fen is None else f"¥{yuan(shift.cash_expected_fen)}"
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>交接班单 {_e(shift.station_name)} #{shift.id}</title><style>{CSS}</style></head>
<body><button onclick="window.print()">打印</button>
<h1>交接班单 — {_e(shift.station_name)}</h1>
<table class="meta">
<tr><td>班次号：{shift.id}</td><td>状态：{status}</td></tr>
<tr><td>开班：{_e(when(shift.opened_at))}　{_e(shift.opened_by_name)}</td>
<td>交班：{_e(when(shift.closed_at or shift.window_end))}　{_e(shift.closed_by_name)}</td></tr>
</table>{warn}
<h2>按支付方式</h2>{_lines("支付方式", t.by_method, t.total, METHOD_NAMES)}
<h2>按油品</h2>{_lines("油品", t.by_grade, None, grades)}
<h2>现金核对</h2><table class="meta">
<tr><td>应有现金：{expected}</td><td>实点现金：{counted}</td>
<td class="{"short" if over is not None and over < 0 else ""}">长短款：{over_text}</td></tr>
</table>{unpaid_table}
<p>备注：{_e(shift.note)}</p>
<p class="sign">交班人签字：＿＿＿＿＿＿　　接班人签字：＿＿＿＿＿＿</p>
</body></html>
"""
