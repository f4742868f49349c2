"""The WeChat Pay side of `bench/pay_flow.py`: the sandbox as its own server, plus one bench route.

    uvicorn --factory bench.pay_flow_peer:create_app --loop uvloop --http httptools --port N

Merchant credentials come from FORECOURT_WECHATPAY_PRIVATE_KEY / _CERT_SERIAL / _APIV3_KEY
(the bench generates test-only ones); the sandbox signs in public-key mode (`PUB_KEY_ID_…`) as
the API is configured in production, and `GET /sandbox/keys` tells the API what to trust.

`POST /bench/complete {"out_trade_no", "label"}` acts as the payer (`sandbox.complete`, exactly
what `POST /sandbox/complete` does) and answers once the first delivery attempt of the
TRANSACTION.SUCCESS notification to the API got its response: `{"status", "notify_ms"}`. The
notifications go over one keep-alive connection pool (`deliver_transport`); the request carries
`X-Request-ID: <label>-n` so the API's access log line can be joined to the flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from forecourt.config import Settings
from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.sandbox import WeChatPaySandbox

DeliveryResult = tuple[int | None, float]
_waiter: ContextVar[asyncio.Future[DeliveryResult] | None] = ContextVar("waiter", default=None)
_label: ContextVar[str | None] = ContextVar("label", default=None)
WAIT_SECONDS = 10.0


class TimedTransport(httpx.AsyncBaseTransport):
    """Keep-alive transport for notifications; resolves the flow's waiter on the first answer."""

    def __init__(self) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        self._inner = httpx.AsyncHTTPTransport(limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one delivery attempt; tell the waiting flow its status and duration."""
        label = _label.get()
        if label:
            request.headers["X-Request-ID"] = f"{label}-n"
        waiter = _waiter.get()
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
            await response.aread()
        except Exception:
            if waiter is not None and not waiter.done():
                waiter.set_result((None, (time.perf_counter() - started) * 1000))
            raise
        if waiter is not None and not waiter.done():
            waiter.set_result((response.status_code, (time.perf_counter() - started) * 1000))
        return response

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._inner.aclose()


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app() -> Starlette:
    """The sandbox (merchant keys from the environment) with `/bench/complete`."""
    settings = Settings()
    if not (
        settings.wechatpay_private_key
        and settings.wechatpay_cert_serial
        and settings.wechatpay_apiv3_key
    ):
        raise RuntimeError("FORECOURT_WECHATPAY_PRIVATE_KEY, _CERT_SERIAL and _APIV3_KEY required")
    key = crypto.load_private_key(settings.wechatpay_private_key.get_secret_value())
    transport = TimedTransport()
    sandbox = WeChatPaySandbox(
        mchid=settings.wechatpay_mchid,
        appid=settings.wechat_appid,
        merchant_public_key=key.public_key(),
        merchant_serial=settings.wechatpay_cert_serial,
        apiv3_key=settings.wechatpay_apiv3_key.get_secret_value(),
        public_key_mode=True,
        resend_scale=settings.sandbox_resend_scale,
        deliver_transport=transport,
    )

    async def complete(request: Request) -> Response:
        data = orjson.loads(await request.body())
        out_trade_no = str(data.get("out_trade_no", ""))
        waiter: asyncio.Future[DeliveryResult] = asyncio.get_running_loop().create_future()
        _waiter.set(waiter)
        _label.set(str(data.get("label") or "") or None)
        try:
            await sandbox.complete(out_trade_no)  # the delivery task inherits both variables
        except LookupError as exc:
            return _json({"error": str(exc)}, 404)
        except ValueError as exc:
            return _json({"error": str(exc)}, 409)
        try:
            status, notify_ms = await asyncio.wait_for(waiter, WAIT_SECONDS)
        except TimeoutError:
            return _json({"error": "no answer to the notification"}, 504)
        return _json({"status": status, "notify_ms": round(notify_ms, 3)})

    async def orders(request: Request) -> Response:
        counts: dict[str, int] = {}
        for order in sandbox.orders.values():
            counts[order.trade_state] = counts.get(order.trade_state, 0) + 1
        return _json({"orders": counts, "deliveries": len(sandbox.delivered)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sandbox.aclose()
        await transport.aclose()

    return Starlette(
        routes=[
            Route("/bench/complete", complete, methods=["POST"]),
            Route("/bench/orders", orders, methods=["GET"]),
            Mount("/", app=sandbox.app),
        ],
        lifespan=lifespan,
    )
