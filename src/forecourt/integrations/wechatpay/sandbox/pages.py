"""The sandbox cashier: a small HTML page that plays the payer (no real money)."""

from __future__ import annotations

from html import escape

from forecourt.integrations.wechatpay.client import fen_to_yuan
from forecourt.integrations.wechatpay.sandbox.state import TRADE_STATE_DESC, Order

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
    ".banner{background:#fff3cd;border:1px solid #e0c36a;padding:.5rem;border-radius:.3rem}"
    ".amount{font-size:2rem;margin:1rem 0}"
    "button{background:#07c160;color:#fff;border:0;padding:.8rem 2rem;font-size:1rem;"
    "border-radius:.3rem}"
)
_TRADE_TYPES = {"JSAPI": "小程序 / JSAPI", "MWEB": "手机网站 / H5"}


def _page(title: str, inner: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<p class="banner"><strong>微信支付 沙箱 / WeChat Pay sandbox, no real money</strong></p>'
        f"{inner}</body></html>"
    )


def _back(redirect_url: str | None, label: str) -> str:
    """A link to the merchant's (already checked http(s)) redirect_url, if any."""
    if not redirect_url:
        return ""
    return f'<p><a href="{escape(redirect_url)}">{escape(label)}</a></p>'


def cashier(order: Order, *, merchant: str, root_path: str, redirect_url: str | None = None) -> str:
    """The cashier page of an order, with a pay button while it is unpaid.

    `redirect_url` (checked http(s) by the caller) is where the browser goes after paying.
    """
    rows = (
        f"<h1>{escape(order.description)}</h1>"
        f'<p class="amount">¥{fen_to_yuan(order.total)}</p>'
        f"<p>商户号 / merchant: {escape(merchant)}<br>"
        f"商户订单号 / order: {escape(order.out_trade_no)}<br>"
        f"支付方式 / via: {escape(_TRADE_TYPES.get(order.trade_type, order.trade_type))}<br>"
        f"状态 / state: {escape(TRADE_STATE_DESC[order.trade_state])}</p>"
    )
    if order.trade_state == "NOTPAY":
        hidden = (
            f'<input type="hidden" name="redirect_url" value="{escape(redirect_url)}">'
            if redirect_url
            else ""
        )
        rows += (
            f'<form method="post" action="{escape(root_path)}/sandbox/pay">'
            f'<input type="hidden" name="out_trade_no" value="{escape(order.out_trade_no)}">'
            f"{hidden}"
            "<button type=submit>确认支付 / Pay (sandbox)</button></form>"
        )
        rows += _back(redirect_url, "取消支付，返回商户 / cancel and go back")
    else:
        rows += _back(redirect_url, "返回商户 / back to the merchant")
    return _page("微信支付 沙箱 / sandbox", rows)


def message(title: str, text: str, *, back: str | None = None) -> str:
    """A plain result page (paid, or why not), optionally linking back to the merchant."""
    return _page(
        title,
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{_back(back, '返回商户 / back')}",
    )
