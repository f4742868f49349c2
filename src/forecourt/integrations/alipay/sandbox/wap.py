"""alipay.trade.wap.pay (手机网站支付) in the sandbox: opening the trade and the sync return.

The browser opens the signed request (GET query or POST form) at the gateway; the sandbox
checks it like any call, opens a WAIT_BUYER_PAY trade and shows its cashier. After paying,
the browser is redirected to `return_url` with Alipay's signed sync-return parameters
(`method=alipay.trade.wap.pay.return`; `sign` covers every other field but `sign_type`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from forecourt.integrations.alipay import crypto
from forecourt.integrations.alipay.client import WAP_PAY, WAP_PRODUCT
from forecourt.integrations.alipay.sandbox.trades import BizError, Trade, TradeBook

RETURN_METHOD = WAP_PAY + ".return"
MAX_URL = 2048


def safe_url(value: str) -> str | None:
    """`value` if it is an absolute http(s) URL the browser may be sent to, else None."""
    if len(value) > MAX_URL or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return value


def _url(value: object, name: str, *, required: bool) -> str | None:
    text = str(value or "")
    if not text:
        if required:
            raise BizError("ACQ.INVALID_PARAMETER", f"参数无效: 缺少必选参数 {name}")
        return None
    if safe_url(text) is None:
        raise BizError("ACQ.INVALID_PARAMETER", f"参数无效: {name} 必须是 http/https 地址")
    return text


def open_trade(book: TradeBook, biz: dict[str, Any], params: dict[str, str]) -> Trade:
    """Check a wap.pay request's business fields and open (or reopen) its trade."""
    product = str(biz.get("product_code") or WAP_PRODUCT)
    if product != WAP_PRODUCT:
        raise BizError("ACQ.INVALID_PARAMETER", f"参数无效: product_code 应为 {WAP_PRODUCT}")
    quit_url = _url(biz.get("quit_url"), "quit_url", required=True)
    return_url = _url(params.get("return_url"), "return_url", required=False)
    notify_url = _url(params.get("notify_url"), "notify_url", required=False)
    trade = book.open(biz, notify_url, product_code=product)
    trade.quit_url, trade.return_url = quit_url, return_url
    return trade


def return_fields(
    trade: Trade, *, app_id: str, seller_id: str, key: rsa_keys.RSAPrivateKey
) -> dict[str, str]:
    """The signed sync-return parameters Alipay appends to `return_url` after payment."""
    fields = {
        "charset": "utf-8",
        "out_trade_no": trade.out_trade_no,
        "method": RETURN_METHOD,
        "total_amount": crypto.amount(trade.total_fen),
        "trade_no": trade.trade_no,
        "auth_app_id": app_id,
        "version": "1.0",
        "app_id": app_id,
        "sign_type": crypto.SIGN_TYPE,
        "seller_id": seller_id,
        "timestamp": crypto.wire_time(),
    }
    fields["sign"] = crypto.sign_notification(key, fields)
    return fields


def with_query(url: str, fields: dict[str, str]) -> str:
    """`url` with `fields` added to its query (before any `#fragment`)."""
    parts = urlsplit(url)
    extra = urlencode(fields)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
