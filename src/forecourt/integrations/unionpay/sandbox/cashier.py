"""The sandbox cashier page: a payer's view of one order with a pay button (no real money)."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from forecourt.integrations.unionpay.sandbox.ledger import Txn
from forecourt.kit.money import yuan

_STYLE = (
    "body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
    ".banner{background:#fff3cd;border:1px solid #e0b000;padding:.5rem;font-weight:bold}"
    "button{font-size:1.2rem;padding:.6rem 1.6rem;background:#d7000f;color:#fff;border:0}"
)


def page(title: str, body: str) -> str:
    """A small HTML page with the sandbox banner."""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<p class="banner">银联沙箱 / UnionPay sandbox — 沙箱 / sandbox, no real money</p>'
        f"{body}</body></html>"
    )


def cashier(txn: Txn, root_path: str, *, payable: bool) -> str:
    """The cashier page of an order; the form posts to `<root_path>/sandbox/pay`."""
    rows = (
        f"<p>订单号 / order: {escape(txn.order_id)}</p>"
        f"<p>金额 / amount: ¥{yuan(txn.amount_fen)}</p>"
        + (f"<p>交易流水号 / tn: {escape(txn.tn)}</p>" if txn.tn else "")
        + f"<p>状态 / status: {'已支付 / paid' if txn.done else '待支付 / open'}</p>"
    )
    if payable:
        rows += (
            f'<form method="post" action="{escape(root_path)}/sandbox/pay">'
            f'<input type="hidden" name="out_trade_no" value="{escape(txn.order_id)}">'
            "<button type=submit>确认付款 / Pay (sandbox)</button></form>"
        )
    return page("银联沙箱收银台 / sandbox cashier", rows)


def error(resp_code: str, resp_msg: str) -> str:
    """The gateway's page for a front (browser) request it refused."""
    body = (
        "<h1>交易失败 / transaction refused</h1>"
        f'<p>respCode: <code id="respCode">{escape(resp_code)}</code></p>'
        f'<p>respMsg: <span id="respMsg">{escape(resp_msg)}</span></p>'
    )
    return page("银联沙箱 / error", body)


def safe_url(value: str) -> str | None:
    """`value` if it is an absolute http(s) URL the browser may be sent to, else None."""
    if len(value) > 2048 or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and host else None


def _attr(value: str) -> str:
    # Line ends as character references: the HTML parser would turn a raw CR LF into LF.
    return escape(value).replace("\r", "&#13;").replace("\n", "&#10;")


def auto_submit(action: str, fields: dict[str, str]) -> str:
    """A page that POSTs `fields` to `action` at once (the button if scripts are off)."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{_attr(v)}">' for k, v in fields.items()
    )
    body = (
        "<p>支付成功，正在返回商户 / paid (sandbox), returning to the merchant…</p>"
        f'<form id="front" method="post" action="{escape(action)}">{inputs}'
        "<button type=submit>返回商户 / back to merchant</button></form>"
        '<script>document.getElementById("front").submit()</script>'
    )
    return page("返回商户 / returning", body)
