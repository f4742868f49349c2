"""The sandbox cashier page: a payer's view of one trade with a pay button (no real money)."""

from __future__ import annotations

from html import escape

from forecourt.integrations.alipay import crypto
from forecourt.integrations.alipay.sandbox.trades import Trade

_STYLE = (
    "body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
    ".banner{background:#fff3cd;border:1px solid #e0b000;padding:.5rem;font-weight:bold}"
    "button{font-size:1.2rem;padding:.6rem 1.6rem;background:#1677ff;color:#fff;border:0}"
)


def page(title: str, body: str) -> str:
    """A small HTML page with the sandbox banner."""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<p class="banner">支付宝沙箱 / Alipay sandbox — 沙箱 / sandbox, no real money</p>'
        f"{body}</body></html>"
    )


def error(sub_code: str, sub_msg: str) -> str:
    """The gateway's error page for a page API request (wap.pay) it refused."""
    body = (
        "<h1>支付错误 / payment error</h1>"
        f'<p>错误代码 / error code: <code id="sub_code">{escape(sub_code)}</code></p>'
        f'<p>错误原因 / reason: <span id="sub_msg">{escape(sub_msg)}</span></p>'
    )
    return page("支付宝沙箱 / error", body)


def quit_link(trade: Trade) -> str:
    """The 返回商家 link of a wap.pay trade (its checked http(s) quit_url), if any."""
    if not trade.quit_url:
        return ""
    return f'<p><a href="{escape(trade.quit_url)}">返回商家 / back to merchant</a></p>'


def cashier(trade: Trade, root_path: str) -> str:
    """The cashier page of `trade`; the form posts to `<root_path>/sandbox/pay`."""
    rows = (
        f"<p>商品 / item: {escape(trade.subject)}</p>"
        f"<p>金额 / amount: ¥{crypto.amount(trade.total_fen)}</p>"
        f"<p>订单号 / order: {escape(trade.out_trade_no)}</p>"
        f"<p>状态 / status: {escape(trade.status)}</p>"
    )
    if trade.status == "WAIT_BUYER_PAY":
        rows += (
            f'<form method="post" action="{escape(root_path)}/sandbox/pay">'
            f'<input type="hidden" name="out_trade_no" value="{escape(trade.out_trade_no)}">'
            "<button type=submit>确认付款 / Pay (sandbox)</button></form>"
        )
    rows += quit_link(trade)
    return page("支付宝沙箱收银台 / sandbox cashier", rows)
