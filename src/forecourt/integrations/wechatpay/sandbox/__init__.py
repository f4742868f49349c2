"""A wire-exact emulator of WeChat Pay API v3 (JSAPI and H5), as a small ASGI app.

In-process (tests, demo) the real `WeChatPayClient` talks to `sandbox.app` through
`httpx.ASGITransport`; standalone it runs with
`uvicorn --factory forecourt.integrations.wechatpay.sandbox:create_app`.

Like WeChat it checks each request's `WECHATPAY2-SHA256-RSA2048` Authorization (401
SIGN_ERROR), signs every API answer with its platform key (certificate serial, or a
`PUB_KEY_ID_…` in public-key mode), answers errors as `{"code", "message"}` with 4xx/5xx,
and sends AES-256-GCM encrypted notifications with the resend schedule. H5 prepays answer an
`h5_url` that opens the sandbox's own cashier page (see `public_base`). Test and demo
controls are methods (`complete`, `fail`, `tamper_next_notification`, ...) and routes
under `/sandbox/`. Everything here is test-only: no real money moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.client import rfc3339
from forecourt.integrations.wechatpay.sandbox import bill, controls, validate
from forecourt.integrations.wechatpay.sandbox.identity import (
    PlatformIdentity,
    TestMerchant,
    WireError,
    authenticate,
)
from forecourt.integrations.wechatpay.sandbox.notify import RESEND_DELAYS, Notifier
from forecourt.integrations.wechatpay.sandbox.state import (
    H5_URL_TTL,
    Delivery,
    Order,
    Refund,
    h5_package,
    prepay_id,
    refund_id,
    transaction_id,
)
from forecourt.kit import clock

__all__ = [
    "H5_URL_TTL",
    "RESEND_DELAYS",
    "Delivery",
    "TestMerchant",
    "WeChatPaySandbox",
    "create_app",
]

JSON = "application/json; charset=utf-8"
Handler = Callable[[Request, bytes], Awaitable["tuple[int, Any] | Response"]]


def _target(request: Request) -> str:
    """The signed path and query exactly as sent (prefix of a mount included)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.scope["path"])
    query: bytes = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


class WeChatPaySandbox:
    """State of the emulated WeChat Pay merchant: orders, refunds, bills, notifications."""

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        merchant_public_key: str | rsa.RSAPublicKey,
        merchant_serial: str,
        apiv3_key: str | bytes,
        public_key_mode: bool = False,
        platform_key: rsa.RSAPrivateKey | None = None,
        resend_scale: float = 1.0,
        refund_seconds: float = 0.5,
        deliver_transport: httpx.AsyncBaseTransport | None = None,
        public_base: str | None = None,
    ) -> None:
        self.mchid = mchid
        self.appid = appid
        self.merchant_key = (
            crypto.load_public_key(merchant_public_key)
            if isinstance(merchant_public_key, str)
            else crypto.checked_public_key(merchant_public_key)
        )
        self.merchant_serial = merchant_serial
        self._apiv3_key = apiv3_key.encode() if isinstance(apiv3_key, str) else apiv3_key
        if len(self._apiv3_key) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")
        self.identity = PlatformIdentity.generate(
            mchid=mchid, now=clock.now(), public_key_mode=public_key_mode, key=platform_key
        )
        self.deliver_transport = deliver_transport  # None = real network
        # Where a browser reaches this sandbox's app (h5_url base), e.g.
        # "http://127.0.0.1:8000/sandbox/wechatpay"; None = the API request's own base URL.
        self.public_base = public_base
        self.refund_seconds = refund_seconds
        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}
        self._bills = bill.BillDesk(mchid)
        self._tamper: tuple[int | None, bool] = (None, False)
        self._notifier = Notifier(
            sign=self.identity.sign_headers,
            transport=lambda: self.deliver_transport,
            resend_scale=resend_scale,
        )
        api: list[tuple[str, str, Handler]] = [
            ("/v3/pay/transactions/jsapi", "POST", self._prepay_jsapi),
            ("/v3/pay/transactions/h5", "POST", self._prepay_h5),
            ("/v3/pay/transactions/out-trade-no/{out_trade_no}", "GET", self._query),
            ("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", "POST", self._close),
            ("/v3/refund/domestic/refunds", "POST", self._refund),
            ("/v3/refund/domestic/refunds/{out_refund_no}", "GET", self._query_refund),
            ("/v3/bill/tradebill", "GET", self._tradebill),
            ("/v3/billdownload/file", "GET", self._billdownload),
            ("/v3/certificates", "GET", self._certificates),
        ]
        self.app = Starlette(
            routes=[Route(p, self._endpoint(h), methods=[m]) for p, m, h in api]
            + controls.routes(self),
            lifespan=self._lifespan,
        )

    # -- controls for tests and the demo ---------------------------------------------------

    @property
    def delivered(self) -> list[Delivery]:
        """Every notification delivery attempt so far, oldest first."""
        return self._notifier.delivered

    @property
    def resend_scale(self) -> float:
        """Multiplier of the resend delays (tiny in tests)."""
        return self._notifier.resend_scale

    @resend_scale.setter
    def resend_scale(self, value: float) -> None:
        self._notifier.resend_scale = value

    def platform_keys(self) -> dict[str, rsa.RSAPublicKey]:
        """What a client must trust to verify this sandbox: {serial or PUB_KEY_ID_…: key}."""
        return self.identity.trusted_keys()

    async def complete(self, out_trade_no: str) -> None:
        """Act as the payer: pay the open order and send TRANSACTION.SUCCESS (with resends)."""
        order = self.orders.get(out_trade_no)
        if order is None:
            raise LookupError(f"no order {out_trade_no}")
        now = clock.now()
        if order.trade_state != "NOTPAY":
            raise ValueError(f"order {out_trade_no} is {order.trade_state}, not NOTPAY")
        if order.time_expire is not None and order.time_expire <= now:
            raise ValueError(f"order {out_trade_no} expired")
        order.trade_state = "SUCCESS"
        order.transaction_id = transaction_id(now)
        order.success_time = now
        resource = order.json(appid=self.appid, mchid=self.mchid)
        del resource["promotion_detail"]
        self._notify(order.notify_url, "TRANSACTION.SUCCESS", "支付成功", "transaction", resource)

    def fail(self, out_trade_no: str) -> None:
        """Make an open order's payment fail (trade_state PAYERROR; WeChat sends no callback)."""
        order = self.orders[out_trade_no]
        if order.trade_state != "NOTPAY":
            raise ValueError(f"order {out_trade_no} is {order.trade_state}, not NOTPAY")
        order.trade_state = "PAYERROR"

    def tamper_next_notification(
        self, *, amount: int | None = None, signature: bool = False
    ) -> None:
        """Fault for the next notification: another amount (validly signed), or a bad signature."""
        self._tamper = (amount, signature)

    async def join(self) -> None:
        """Wait for every pending delivery, resend and refund settlement (tests)."""
        await self._notifier.join()

    async def aclose(self) -> None:
        """Cancel pending resends and refund settlements."""
        await self._notifier.aclose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    # -- plumbing --------------------------------------------------------------------------

    def _notify(
        self, url: str, event_type: str, summary: str, kind: str, resource: dict[str, Any]
    ) -> None:
        amount, corrupt = self._tamper
        self._tamper = (None, False)
        if amount is not None:
            field = "total" if kind == "transaction" else "refund"
            resource = {**resource, "amount": {**resource["amount"], field: amount}}
        nonce = crypto.nonce_str(12)
        event_id = str(uuid.uuid4())
        envelope = {
            "id": event_id,
            "create_time": rfc3339(clock.now()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": kind,
                "algorithm": crypto.AES_ALGORITHM,
                "ciphertext": crypto.aes_gcm_encrypt(
                    self._apiv3_key, nonce, kind, orjson.dumps(resource)
                ),
                "associated_data": kind,
                "nonce": nonce,
            },
        }
        self._notifier.send(
            url=url,
            body=orjson.dumps(envelope),
            event_id=event_id,
            event_type=event_type,
            corrupt=corrupt,
        )

    def _signed(self, status: int, payload: Any) -> Response:
        body = b"" if payload is None else orjson.dumps(payload)
        headers = {"Request-ID": secrets.token_hex(16)}
        headers.update(self.identity.sign_headers(body, clock.now()))
        return Response(body, status_code=status, headers=headers, media_type=JSON)

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            try:
                authenticate(
                    header=request.headers.get("authorization", ""),
                    method=request.method,
                    target=_target(request),
                    body=body,
                    mchid=self.mchid,
                    merchant_serial=self.merchant_serial,
                    merchant_key=self.merchant_key,
                    now=clock.now(),
                )
                result = await handler(request, body)
            except WireError as exc:
                return self._signed(exc.status, {"code": exc.code, "message": exc.message})
            if isinstance(result, Response):
                return result
            return self._signed(*result)

        return endpoint

    def _order(self, out_trade_no: str) -> Order:
        order = self.orders.get(out_trade_no)
        if order is None:
            raise WireError(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def _check_mchid(self, value: object) -> None:
        if not value:
            raise validate.param_error("mchid 为必填项")
        if value != self.mchid:
            raise WireError(400, "MCH_NOT_EXISTS", "商户号不存在")

    # -- WeChat Pay endpoints ----------------------------------------------------------------

    def _open(self, body: bytes, trade_type: str) -> Order:
        """Validate a prepay and open its order, or the same order again (identical body)."""
        data = validate.json_object(body)
        fields = validate.prepay(data, mchid=self.mchid, appid=self.appid, trade_type=trade_type)
        out_trade_no = fields["out_trade_no"]
        existing = self.orders.get(out_trade_no)
        if existing is not None:
            if existing.trade_state in ("SUCCESS", "REFUND"):
                raise WireError(400, "ORDERPAID", "该订单已支付")
            if existing.trade_state == "CLOSED":
                raise WireError(400, "ORDER_CLOSED", "当前订单已关闭，请重新下单")
            if existing.request != data:
                raise WireError(400, "INVALID_REQUEST", "201 商户订单号重复，且与原订单参数不一致")
            return existing
        now = clock.now()
        order = Order(
            request=data,
            prepay_id=prepay_id(now),
            out_trade_no=out_trade_no,
            description=fields["description"],
            total=fields["total"],
            openid=fields["openid"],
            notify_url=fields["notify_url"],
            created_at=now,
            time_expire=fields["time_expire"],
            attach=fields["attach"],
            trade_type=trade_type,
            client_ip=fields["client_ip"],
        )
        self.orders[out_trade_no] = order
        return order

    async def _prepay_jsapi(self, request: Request, body: bytes) -> tuple[int, Any]:
        return 200, {"prepay_id": self._open(body, "JSAPI").prepay_id}

    async def _prepay_h5(self, request: Request, body: bytes) -> tuple[int, Any]:
        order = self._open(body, "MWEB")
        package = h5_package()  # every call (also a retry) issues a fresh 5-minute link
        order.h5_links[package] = clock.now()
        return 200, {"h5_url": self.h5_url(request, order, package)}

    def h5_url(self, request: Request, order: Order, package: str) -> str:
        """The cashier URL of an H5 order, shaped like WeChat's `checkmweb?prepay_id=…&package=…`.

        Based on `public_base` when set, else on the API request's origin and root_path.
        """
        base = self.public_base.rstrip("/") if self.public_base else controls.request_base(request)
        query = urlencode({"prepay_id": order.prepay_id, "package": package})
        return f"{base}{controls.CASHIER_PATH}?{query}"

    async def _query(self, request: Request, body: bytes) -> tuple[int, Any]:
        self._check_mchid(request.query_params.get("mchid"))
        order = self._order(request.path_params["out_trade_no"])
        return 200, order.json(appid=self.appid, mchid=self.mchid)

    async def _close(self, request: Request, body: bytes) -> tuple[int, Any]:
        self._check_mchid(validate.json_object(body).get("mchid"))
        order = self._order(request.path_params["out_trade_no"])
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise WireError(400, "ORDERPAID", "订单已支付，不能关闭")
        order.trade_state = "CLOSED"
        return 204, None

    async def _refund(self, request: Request, body: bytes) -> tuple[int, Any]:
        fields = validate.refund(validate.json_object(body))
        order: Order | None
        if fields["transaction_id"]:
            order = next(
                (o for o in self.orders.values() if o.transaction_id == fields["transaction_id"]),
                None,
            )
            if order and fields["out_trade_no"] and order.out_trade_no != fields["out_trade_no"]:
                raise validate.param_error("transaction_id 与 out_trade_no 不属于同一订单")
        else:
            order = self.orders.get(fields["out_trade_no"])
        if order is None:
            raise WireError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = self.refunds.get(fields["out_refund_no"])
        if existing is not None:
            if existing.order is order and existing.amount == fields["refund"]:
                return 200, existing.json()
            raise WireError(400, "INVALID_REQUEST", "退款单号已存在，且与原退款请求参数不一致")
        if order.trade_state not in ("SUCCESS", "REFUND"):
            raise WireError(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if fields["total"] != order.total:
            raise validate.param_error("订单金额 amount.total 与原订单金额不一致")
        if fields["refund"] > order.total - order.refunded:
            raise WireError(400, "NOT_ENOUGH", "申请退款金额超过订单可退金额")
        now = clock.now()
        refund = Refund(
            order=order,
            out_refund_no=fields["out_refund_no"],
            refund_id=refund_id(now),
            amount=fields["refund"],
            reason=fields["reason"],
            notify_url=fields["notify_url"],
            created_at=now,
        )
        self.refunds[refund.out_refund_no] = refund
        order.refunded += refund.amount
        order.trade_state = "REFUND"
        self._notifier.spawn(self._settle_refund(refund))
        return 200, refund.json()

    async def _settle_refund(self, refund: Refund) -> None:
        await asyncio.sleep(self.refund_seconds)
        refund.status = "SUCCESS"
        refund.success_time = clock.now()
        if refund.notify_url:
            resource = refund.resource(mchid=self.mchid)
            self._notify(refund.notify_url, "REFUND.SUCCESS", "退款成功", "refund", resource)

    async def _query_refund(self, request: Request, body: bytes) -> tuple[int, Any]:
        refund = self.refunds.get(request.path_params["out_refund_no"])
        if refund is None:
            raise WireError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return 200, refund.json()

    async def _tradebill(self, request: Request, body: bytes) -> tuple[int, Any]:
        orders, refunds = self.orders.values(), self.refunds.values()
        return 200, self._bills.apply(request, appid=self.appid, orders=orders, refunds=refunds)

    async def _billdownload(self, request: Request, body: bytes) -> Response:
        return self._bills.download(request.query_params.get("token", ""))

    async def _certificates(self, request: Request, body: bytes) -> tuple[int, Any]:
        return 200, self.identity.certificates_body(self._apiv3_key)


def create_app() -> Starlette:
    """Standalone sandbox for `uvicorn --factory` (keys from settings, or generated)."""
    from forecourt.integrations.wechatpay.sandbox.standalone import create_app as build

    return build()
