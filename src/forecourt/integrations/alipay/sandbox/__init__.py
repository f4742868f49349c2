"""A wire-exact emulator of the Alipay open-platform gateway (RSA2), as a small ASGI app.

In-process (tests, demo) the real `AlipayClient` talks to `sandbox.app` through
`httpx.ASGITransport`; standalone it runs with
`uvicorn --factory forecourt.integrations.alipay.sandbox:create_app`.

Like Alipay it takes the common parameters from the query string and/or the form body,
verifies the app's RSA2 signature (40002 isv.invalid-signature), signs every answer over the
raw `<method>_response` node with its own test-only key, and POSTs `trade_status_sync`
notifications to notify_url, resending until the receiver answers `success`. After a refund it
also sends a `trade_status_sync` carrying `out_biz_no`, `refund_fee` (cumulative) and
`gmt_refund`, as Alipay does when the trade has a notify_url (`notify_refunds=False` stops it).
`alipay.trade.wap.pay`, opened by the payer's browser, answers with an HTML cashier (or an
error page naming the sub_code) instead of JSON; see `sandbox/wap.py`.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, timedelta
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from forecourt.integrations.alipay import crypto
from forecourt.integrations.alipay.client import WAP_PAY
from forecourt.integrations.alipay.sandbox import cashier, wap
from forecourt.integrations.alipay.sandbox.bills import build_bill
from forecourt.integrations.alipay.sandbox.delivery import DeliveryAttempt, notifier
from forecourt.integrations.alipay.sandbox.trades import (
    SANDBOX_BUYER_ID,
    SANDBOX_SELLER_ID,
    SUCCESS,
    WAIT,
    BizError,
    Trade,
    TradeBook,
)
from forecourt.kit import clock, rsa

__all__ = ["AlipaySandbox", "DeliveryAttempt", "Trade", "create_app"]

MEDIA = "text/html;charset=utf-8"
MSG = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
}
COMMON = (
    ("method", "isv.missing-method"),
    ("app_id", "isv.missing-app-id"),
    ("sign_type", "isv.missing-signature-type"),
    ("sign", "isv.missing-signature"),
    ("timestamp", "isv.missing-timestamp"),
    ("version", "isv.missing-version"),
)
BILL_URL_TTL = timedelta(seconds=30)
Tamper = Literal["amount", "signature"]
Handler = Callable[[Request, dict[str, Any], dict[str, str]], dict[str, Any]]


class AlipaySandbox:
    """State of the emulated Alipay: one merchant app, its trades, deliveries and faults."""

    def __init__(
        self,
        *,
        app_id: str,
        app_public_key: rsa_keys.RSAPublicKey,
        resend_scale: float = 1.0,
        notify_refunds: bool = True,
        seller_id: str = SANDBOX_SELLER_ID,
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.notify_refunds = notify_refunds
        self._app_key = app_public_key
        self._key = rsa.generate_test_key()  # test-only key of the emulated Alipay
        self.alipay_public_key = self._key.public_key()
        self.book = TradeBook()
        self.deliver_transport: httpx.AsyncBaseTransport | None = None
        self._notifier = notifier(scale=resend_scale)
        self._tamper: deque[Tamper] = deque()
        self._faults: deque[str] = deque()
        self._bill_tokens: dict[str, tuple[date, datetime]] = {}
        self.calls: deque[str] = deque(maxlen=1000)
        self.app = Starlette(
            routes=[
                Route("/gateway.do", self._gateway, methods=["GET", "POST"]),
                Route("/downloadBillFile.resource", self._download, methods=["GET"]),
                Route("/sandbox/cashier", self._cashier, methods=["GET"]),
                Route("/sandbox/pay", self._pay, methods=["POST"]),
                Route("/sandbox/keys", self._keys, methods=["GET"]),
            ]
        )

    # -- controls for tests and the demo ---------------------------------------------------

    @property
    def alipay_public_key_pem(self) -> str:
        """PEM of the sandbox's (test-only) Alipay public key."""
        return rsa.public_pem(self.alipay_public_key)

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every notification POST so far, oldest first."""
        return self._notifier.attempts

    def trade(self, out_trade_no: str) -> Trade | None:
        """The sandbox's record of a trade."""
        return self.book.trades.get(out_trade_no)

    async def complete(self, out_trade_no: str) -> None:
        """Act as the payer: pay the waiting trade and notify notify_url (ValueError if not)."""
        trade = self.book.trades.get(out_trade_no)
        if trade is None:
            raise ValueError(f"no trade {out_trade_no}")
        trade.settle_expiry()
        if trade.status != WAIT:
            raise ValueError(f"trade {out_trade_no} is {trade.status}")
        trade.status = SUCCESS
        trade.paid_at = clock.now()
        trade.buyer_id = trade.buyer_id or SANDBOX_BUYER_ID
        self._notify(trade, {})

    def tamper_next(self, mode: Tamper) -> None:
        """Spoil the next notification: a wrong amount (validly signed) or a broken signature."""
        self._tamper.append(mode)

    def fail_next(self, sub_code: str = "ACQ.SYSTEM_ERROR", *, times: int = 1) -> None:
        """Answer the next `times` business calls with this 40004 sub_code."""
        self._faults.extend([sub_code] * times)

    async def settle(self) -> None:
        """Wait until every notification has been acknowledged or abandoned."""
        await self._notifier.settle()

    async def aclose(self) -> None:
        """Cancel pending notification deliveries."""
        await self._notifier.aclose()

    # -- notifications ---------------------------------------------------------------------

    def _notify(self, trade: Trade, extra: dict[str, str]) -> None:
        if not trade.notify_url:
            return
        paid = crypto.amount(trade.total_fen)
        fields = {
            "notify_time": crypto.wire_time(),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(18),
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": crypto.SIGN_TYPE,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "subject": trade.subject,
            "total_amount": paid,
            "receipt_amount": paid,
            "invoice_amount": paid,
            "buyer_pay_amount": paid,
            "point_amount": "0.00",
            "fund_bill_list": f'[{{"amount":"{paid}","fundChannel":"ALIPAYACCOUNT"}}]',
            "buyer_id": trade.buyer_id or SANDBOX_BUYER_ID,
            "seller_id": self.seller_id,
            "gmt_create": crypto.wire_time(trade.created_at),
            "gmt_payment": crypto.wire_time(trade.paid_at),
            **extra,
        }
        mode = self._tamper.popleft() if self._tamper else None
        if mode == "amount":
            fields["total_amount"] = crypto.amount(trade.total_fen + 1)
            fields["receipt_amount"] = fields["buyer_pay_amount"] = fields["total_amount"]
        fields["sign"] = crypto.sign_notification(self._key, fields)
        if mode == "signature":
            sign = fields["sign"]
            fields["sign"] = ("B" if sign[0] == "A" else "A") + sign[1:]
        self._notifier.send(trade.notify_url, fields, transport=self.deliver_transport)

    # -- the gateway -----------------------------------------------------------------------

    def _answer(self, node_name: str, node: dict[str, Any]) -> Response:
        return Response(crypto.signed_answer(self._key, node_name, node), media_type=MEDIA)

    def _error(self, node_name: str, code: str, sub_code: str, sub_msg: str) -> Response:
        node = {"code": code, "msg": MSG[code], "sub_code": sub_code, "sub_msg": sub_msg}
        return self._answer(node_name, node)

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", errors="replace")
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    async def _gateway(self, request: Request) -> Response:
        p = await self._params(request)
        method = p.get("method", "")
        handlers = self._handlers()
        page = method == WAP_PAY  # a page API: the payer's browser, answered with HTML
        node_name = method.replace(".", "_") + "_response" if method in handlers else ""
        self.calls.append(method)
        try:
            biz = self._checked(p, known=bool(node_name) or page)
            if self._faults:
                raise BizError(self._faults.popleft(), "系统异常（沙箱注入）")
            if page:
                trade = wap.open_trade(self.book, biz, p)
                root = request.scope.get("root_path", "")
                return HTMLResponse(cashier.cashier(trade, root))
            result = handlers[method](request, biz, p)
        except BizError as exc:
            if page:
                return HTMLResponse(cashier.error(exc.sub_code, exc.sub_msg), status_code=400)
            return self._error(node_name or "error_response", exc.code, exc.sub_code, exc.sub_msg)
        return self._answer(node_name, {"code": "10000", "msg": "Success", **result})

    def _checked(self, p: dict[str, str], *, known: bool) -> dict[str, Any]:
        """The decoded biz_content once the common parameters and `sign` check out."""
        for name, sub_code in COMMON:
            if not p.get(name):
                raise BizError(sub_code, f"缺少{name}", code="40001")
        if not known:
            raise BizError("isv.invalid-method", "不存在的方法名", code="40002")
        if p["app_id"] != self.app_id:
            raise BizError("isv.invalid-app-id", "无效的AppID参数", code="40002")
        if p["sign_type"] != crypto.SIGN_TYPE:
            raise BizError("isv.invalid-signature-type", "无效的签名类型", code="40002")
        if p.get("charset", "utf-8").lower() != "utf-8":
            raise BizError("isv.invalid-charset", "字符集错误", code="40002")
        try:
            crypto.parse_time(p["timestamp"])
        except ValueError:
            raise BizError("isv.invalid-timestamp", "非法的时间戳参数", code="40002") from None
        if not crypto.verify_request(self._app_key, p):
            msg = "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配"
            raise BizError("isv.invalid-signature", msg, code="40002")
        try:
            biz = orjson.loads(p.get("biz_content") or "{}")
        except orjson.JSONDecodeError:
            biz = None
        if not isinstance(biz, dict):
            raise BizError("ACQ.INVALID_PARAMETER", "参数无效: biz_content 不是JSON对象")
        return biz

    def _handlers(self) -> dict[str, Handler]:
        return {
            "alipay.trade.create": lambda r, b, p: self.book.create(b, p.get("notify_url")),
            "alipay.trade.query": lambda r, b, p: self.book.query(b),
            "alipay.trade.close": lambda r, b, p: self.book.close(b),
            "alipay.trade.refund": lambda r, b, p: self._refund(b),
            "alipay.trade.fastpay.refund.query": lambda r, b, p: self.book.refund_query(b),
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }

    def _refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        node, trade, new = self.book.refund(biz)
        if new is not None and self.notify_refunds:
            extra = {
                "out_biz_no": new.out_request_no,
                "refund_fee": crypto.amount(trade.refunded_fen),
                "gmt_refund": crypto.wire_time(new.refunded_at) + ".000",
            }
            self._notify(trade, extra)
        return node

    def _bill_url(self, request: Request, biz: dict[str, Any], _: dict[str, str]) -> dict[str, Any]:
        if biz.get("bill_type") not in ("trade", "signcustomer"):
            raise BizError("ACQ.INVALID_PARAMETER", "参数无效: bill_type")
        try:
            day = date.fromisoformat(str(biz.get("bill_date", "")))
        except ValueError:
            raise BizError("ACQ.INVALID_PARAMETER", "参数无效: bill_date 格式错误") from None
        if day >= clock.local(clock.now()).date():
            raise BizError("isp.bill_not_exist", "账单不存在")
        token = secrets.token_hex(16)
        self._bill_tokens[token] = (day, clock.now() + BILL_URL_TTL)
        stamp = day.strftime("%Y%m%d")
        query = urlencode(
            {
                "bizType": "trade",
                "userId": self.seller_id,
                "fileType": "csv.zip",
                "bizDates": stamp,
                "downloadFileName": f"{self.seller_id}_{stamp}.csv.zip",
                "fileId": secrets.token_hex(8),
                "timestamp": str(int(clock.now().timestamp())),
                "token": token,
            }
        )
        base = str(request.base_url).rstrip("/")
        return {"bill_download_url": f"{base}/downloadBillFile.resource?{query}"}

    async def _download(self, request: Request) -> Response:
        entry = self._bill_tokens.get(request.query_params.get("token", ""))
        if entry is None or entry[1] <= clock.now():
            return Response("download url expired", status_code=404, media_type="text/plain")
        archive = build_bill(self.seller_id, entry[0], self.book.trades.values())
        name = f"{self.seller_id}_{entry[0]:%Y%m%d}.csv.zip"
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        return Response(archive, media_type="application/oct-stream", headers=headers)

    # -- sandbox pages ---------------------------------------------------------------------

    async def _cashier(self, request: Request) -> Response:
        trade = self.book.trades.get(request.query_params.get("out_trade_no", ""))
        if trade is None:
            return HTMLResponse(cashier.page("not found", "<p>交易不存在 / no such trade</p>"), 404)
        trade.settle_expiry()
        return HTMLResponse(cashier.cashier(trade, request.scope.get("root_path", "")))

    async def _pay(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        try:
            await self.complete(form.get("out_trade_no", ""))
        except ValueError as exc:
            body = f"<p>{escape(str(exc))}</p>"
            return HTMLResponse(cashier.page("refused", body), status_code=409)
        trade = self.book.trades[form["out_trade_no"]]
        target = wap.safe_url(trade.return_url or "")
        if target is not None:  # wap.pay: back to the merchant with the signed sync return
            fields = wap.return_fields(
                trade, app_id=self.app_id, seller_id=self.seller_id, key=self._key
            )
            return RedirectResponse(wap.with_query(target, fields), status_code=303)
        body = "<p>支付成功 / paid (sandbox)</p>" + cashier.quit_link(trade)
        return HTMLResponse(cashier.page("paid", body))

    async def _keys(self, request: Request) -> Response:
        body = {"alipay_public_key": self.alipay_public_key_pem, "app_id": self.app_id}
        return Response(orjson.dumps(body), media_type="application/json")


def create_app() -> Starlette:
    """Standalone sandbox for FORECOURT_ALIPAY_APP_ID; its keys are shown at /sandbox/keys."""
    from forecourt.config import Settings

    settings = Settings()
    if settings.alipay_private_key:
        app_key = rsa.load_private_key(settings.alipay_private_key.get_secret_value())
    else:
        app_key = rsa.generate_test_key()  # test-only app key, published below
    sandbox = AlipaySandbox(
        app_id=settings.alipay_app_id,
        app_public_key=app_key.public_key(),
        resend_scale=settings.sandbox_resend_scale,
    )
    if not settings.alipay_private_key:
        pem = rsa.private_pem(app_key)

        async def test_only_app_key(request: Request) -> Response:
            return Response(pem, media_type="text/plain")

        sandbox.app.add_route("/sandbox/test-only-app-key", test_only_app_key)
    return sandbox.app
