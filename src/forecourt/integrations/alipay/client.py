"""Alipay open-platform gateway client (RSA2): trades, refunds, bills, notifications.

Every call is one signed form POST to the gateway. An answer is trusted only when its `sign`
verifies over the raw text of the `<method>_response` node with Alipay's public key; a
failure answer (`code` != 10000) becomes a `ProviderError` named by its `sub_code`.

Page APIs (`alipay.trade.wap.pay`) make no call: the client signs the request and the
payer's browser opens `{page_gateway}?{signed query}`; Alipay answers with its cashier.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from forecourt.integrations.alipay import crypto
from forecourt.kit import rsa
from forecourt.payment.providers import ProviderError

log = logging.getLogger(__name__)

PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
SUCCESS = "10000"
RETRYABLE = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.ACQ.SYSTEM_ERROR", "20000"})
_BUYER_ID = re.compile(r"^2088\d{12}$")
WAP_PAY = "alipay.trade.wap.pay"
WAP_PRODUCT = "QUICK_WAP_WAY"


class AlipayClient:
    """httpx client for the Alipay gateway (or the sandbox, through an injected transport)."""

    def __init__(
        self,
        *,
        app_id: str,
        private_key: rsa_keys.RSAPrivateKey,
        alipay_public_key: rsa_keys.RSAPublicKey,
        gateway: str = PRODUCTION_GATEWAY,
        page_gateway: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.app_id = app_id
        self.gateway = gateway
        self.page_gateway = page_gateway or gateway  # what the payer's browser opens
        self._key = private_key
        self._alipay_key = alipay_public_key
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)

    def signed_params(
        self, method: str, biz: Mapping[str, Any], *, notify_url: str | None = None
    ) -> dict[str, str]:
        """The common parameters plus `biz_content` and `sign` of one call."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": crypto.SIGN_TYPE,
            "timestamp": crypto.wire_time(),
            "version": "1.0",
            "biz_content": crypto.compact_json(dict(biz)),
        }
        if notify_url:
            params["notify_url"] = notify_url
        params["sign"] = crypto.sign_request(self._key, params)
        return params

    def page_params(
        self,
        method: str,
        biz: Mapping[str, Any],
        *,
        notify_url: str | None = None,
        return_url: str | None = None,
    ) -> dict[str, str]:
        """Signed parameters of a page API, sorted, `sign` last (no `format`: it answers HTML)."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "charset": "utf-8",
            "sign_type": crypto.SIGN_TYPE,
            "timestamp": crypto.wire_time(),
            "version": "1.0",
            "biz_content": crypto.compact_json(dict(biz)),
        }
        if notify_url:
            params["notify_url"] = notify_url
        if return_url:
            params["return_url"] = return_url
        ordered = {k: params[k] for k in sorted(params)}
        ordered["sign"] = crypto.sign_request(self._key, ordered)
        return ordered

    def wap_pay_params(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        notify_url: str,
        expires_at: datetime,
        quit_url: str,
        return_url: str | None = None,
    ) -> dict[str, str]:
        """alipay.trade.wap.pay (手机网站支付): the signed fields (GET query or POST form)."""
        biz = {
            "subject": subject,
            "out_trade_no": out_trade_no,
            "total_amount": crypto.amount(amount_fen),
            "product_code": WAP_PRODUCT,
            "time_expire": crypto.wire_time(expires_at),
            "quit_url": quit_url,
        }
        return self.page_params(WAP_PAY, biz, notify_url=notify_url, return_url=return_url)

    def wap_pay_url(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        notify_url: str,
        expires_at: datetime,
        quit_url: str,
        return_url: str | None = None,
    ) -> str:
        """The URL the payer's browser opens (GET) for alipay.trade.wap.pay; no network call."""
        params = self.wap_pay_params(
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            subject=subject,
            notify_url=notify_url,
            expires_at=expires_at,
            quit_url=quit_url,
            return_url=return_url,
        )
        joint = "&" if "?" in self.page_gateway else "?"
        return f"{self.page_gateway}{joint}{urlencode(params)}"

    async def call(
        self, method: str, biz: Mapping[str, Any], *, notify_url: str | None = None
    ) -> dict[str, Any]:
        """Send one call; the verified `<method>_response` node, or ProviderError."""
        params = self.signed_params(method, biz, notify_url=notify_url)
        try:
            resp = await self._http.post(self.gateway, data=params)
        except httpx.HTTPError as exc:
            log.warning("alipay unreachable", extra={"method": method, "error": type(exc).__name__})
            raise ProviderError("NETWORK_ERROR", "alipay unreachable", retryable=True) from exc
        if resp.status_code != 200:
            raise ProviderError(
                f"HTTP_{resp.status_code}",
                "alipay gateway error",
                retryable=resp.status_code >= 500,
            )
        return self._verified(method, resp.content)

    def _verified(self, method: str, content: bytes) -> dict[str, Any]:
        raw = content.decode("utf-8", errors="replace")
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ProviderError("INVALID_RESPONSE", "answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ProviderError("INVALID_RESPONSE", "answer is not an object")
        name = method.replace(".", "_") + "_response"
        if name not in body and "error_response" in body:
            name = "error_response"
        text = crypto.response_node(raw, name)
        node = body.get(name)
        if text is None or not isinstance(node, dict):
            raise ProviderError("INVALID_RESPONSE", f"answer without {name}")
        signature = body.get("sign")
        if signature is not None and not rsa.verify(
            self._alipay_key, text.encode(), str(signature)
        ):
            raise ProviderError("INVALID_RESPONSE_SIGNATURE", "answer signature does not verify")
        code = str(node.get("code", ""))
        if code != SUCCESS:
            sub_code = str(node.get("sub_code") or code or "UNKNOWN")
            message = str(node.get("sub_msg") or node.get("msg") or "refused")
            log.info("alipay refused", extra={"method": method, "sub_code": sub_code})
            raise ProviderError(sub_code, message, retryable=sub_code in RETRYABLE)
        if signature is None:
            raise ProviderError("INVALID_RESPONSE_SIGNATURE", "success answer without sign")
        return node

    async def trade_create(
        self,
        *,
        out_trade_no: str,
        amount_fen: int,
        subject: str,
        notify_url: str,
        expires_at: datetime,
        buyer: str | None,
    ) -> dict[str, Any]:
        """alipay.trade.create (mini-program / JSAPI); the node carries `trade_no`."""
        biz: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "total_amount": crypto.amount(amount_fen),
            "subject": subject,
            "product_code": "JSAPI_PAY",
            "time_expire": crypto.wire_time(expires_at),
        }
        if buyer:
            biz["buyer_id" if _BUYER_ID.match(buyer) else "buyer_open_id"] = buyer
        return await self.call("alipay.trade.create", biz, notify_url=notify_url)

    async def trade_query(self, out_trade_no: str) -> dict[str, Any]:
        """alipay.trade.query by our order number."""
        return await self.call("alipay.trade.query", {"out_trade_no": out_trade_no})

    async def trade_close(self, out_trade_no: str) -> dict[str, Any]:
        """alipay.trade.close an unpaid trade."""
        return await self.call("alipay.trade.close", {"out_trade_no": out_trade_no})

    async def trade_refund(
        self, *, out_trade_no: str, refund_fen: int, out_request_no: str, reason: str
    ) -> dict[str, Any]:
        """alipay.trade.refund (synchronous; idempotent by out_request_no)."""
        biz = {
            "out_trade_no": out_trade_no,
            "refund_amount": crypto.amount(refund_fen),
            "out_request_no": out_request_no,
            "refund_reason": reason,
        }
        return await self.call("alipay.trade.refund", biz)

    async def refund_query(self, *, out_trade_no: str, out_request_no: str) -> dict[str, Any]:
        """alipay.trade.fastpay.refund.query of one refund request."""
        biz = {
            "out_trade_no": out_trade_no,
            "out_request_no": out_request_no,
            "query_options": ["gmt_refund_pay"],
        }
        return await self.call("alipay.trade.fastpay.refund.query", biz)

    async def bill_download_url(self, bill_date: date) -> str:
        """The short-lived URL of the day's trade bill (a ZIP of GBK CSV files)."""
        biz = {"bill_type": "trade", "bill_date": bill_date.isoformat()}
        node = await self.call("alipay.data.dataservice.bill.downloadurl.query", biz)
        url = node.get("bill_download_url")
        if not isinstance(url, str) or not url:
            raise ProviderError("INVALID_RESPONSE", "answer without bill_download_url")
        return url

    async def download(self, url: str) -> bytes:
        """GET a bill file."""
        try:
            resp = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise ProviderError("NETWORK_ERROR", "bill download failed", retryable=True) from exc
        if resp.status_code != 200:
            raise ProviderError(f"HTTP_{resp.status_code}", "bill download refused")
        return resp.content

    def verify_notification(self, fields: Mapping[str, str]) -> bool:
        """True when a notification's (or a page return's) `sign` verifies with Alipay's key."""
        return fields.get("sign_type", crypto.SIGN_TYPE) == crypto.SIGN_TYPE and (
            crypto.verify_notification(self._alipay_key, fields)
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()
