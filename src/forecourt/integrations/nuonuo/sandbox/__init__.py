"""A wire-exact Nuonuo open-platform sandbox for 数电票 (in-process or standalone).

It checks what the platform checks on the wire (appkey, access token, timestamp window, senid
replay, the HMAC-SHA1 `X-Nuonuo-Sign`, `userTax`, `method`), then the order (buyer tax id by
GB 32100-2015, refined-oil unit, quantity, tax-code short name, amounts within tolerance, the
seller's refined-oil quota, red-letter against an issued blue invoice). It answers with an
`invoiceSerialNum` at once and issues after a random delay (0.2-2 s by default), then calls
`callBackUrl` back (form `operater=callback&orderno=…&content={json}`), resending until it
gets `{"status": "0000"}`. Error codes other than E0000 are the sandbox's own (see
docs/invoices.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forecourt.integrations.nuonuo.client import DUPLICATE_ORDER_NO, ISSUE, QUERY, SUCCESS, sign
from forecourt.integrations.nuonuo.sandbox import validate
from forecourt.integrations.nuonuo.sandbox.state import Delivery, Invoice, new_number, new_serial
from forecourt.integrations.nuonuo.sandbox.validate import WireError
from forecourt.invoice import taxid
from forecourt.kit import clock

__all__ = ["Delivery", "NuonuoSandbox", "create_app"]

JSON = "application/json; charset=utf-8"
TIMESTAMP_WINDOW = timedelta(minutes=10)
RESEND_DELAYS: tuple[float, ...] = (2, 10, 60, 300, 900)
_rng = secrets.SystemRandom()


class NuonuoSandbox:
    """State of the emulated platform: tokens, sellers' quotas, invoices, callbacks."""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        delay: tuple[float, float] = (0.2, 2.0),
        default_quota_litres: int = 1_000_000,
        resend_scale: float = 1.0,
        deliver_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app_key = app_key
        self._secret = app_secret
        self.delay = delay
        self.default_quota_ml = default_quota_litres * 1000
        self.resend_scale = resend_scale
        self.deliver_transport = deliver_transport  # None = real network
        self.tokens: set[str] = set()
        self.quota_ml: dict[str, int] = {}
        self.invoices: dict[str, Invoice] = {}
        self.by_order_no: dict[tuple[str, str], Invoice] = {}
        self.delivered: list[Delivery] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (method, body) as received
        self._senids: dict[str, None] = {}
        self._fail_next: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: tuple[httpx.AsyncBaseTransport | None, httpx.AsyncClient] | None = None
        self._retired: list[httpx.AsyncClient] = []
        self.app = Starlette(
            routes=[
                Route("/accessToken", self._token, methods=["POST"]),
                Route("/open/v1/services", self._services, methods=["POST"]),
            ],
            lifespan=self._lifespan,
        )

    # -- controls for tests and the demo ---------------------------------------------------

    def issue_token(self) -> str:
        """A valid access token (as the OAuth step would give)."""
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return token

    def set_quota(self, seller: str, litres: int) -> None:
        """Set a seller's remaining refined-oil quota."""
        self.quota_ml[seller] = litres * 1000

    def quota_litres(self, seller: str) -> Decimal:
        """A seller's remaining refined-oil quota in litres."""
        return Decimal(self.quota_ml.get(seller, self.default_quota_ml)) / 1000

    def fail_next(self, cause: str = "税务局系统异常，开票失败") -> None:
        """Make the next accepted invoice fail asynchronously (status 22)."""
        self._fail_next = cause

    async def join(self) -> None:
        """Wait for every pending issuance and callback delivery (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel pending issuances and deliveries."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        clients = self._retired + ([self._client[1]] if self._client else [])
        self._client, self._retired = None, []
        for client in clients:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- wire ------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        given = {k: v[0] for k, v in form.items()}
        if (
            given.get("grant_type") != "client_credentials"
            or given.get("client_id") != self.app_key
            or not hmac.compare_digest(given.get("client_secret", ""), self._secret)
        ):
            body = {"error": "invalid_client", "error_description": "应用信息错误"}
            return Response(orjson.dumps(body), status_code=400, media_type=JSON)
        body2 = {"access_token": self.issue_token(), "expires_in": 86400}
        return Response(orjson.dumps(body2), media_type=JSON)

    @staticmethod
    def _answer(code: str, describe: str, result: Any = None) -> Response:
        body = {"code": code, "describe": describe, "result": result}
        return Response(orjson.dumps(body), media_type=JSON)

    def _authenticate(self, request: Request, body: bytes) -> tuple[str, str]:
        q = request.query_params
        senid, nonce, ts, appkey = (q.get(k, "") for k in ("senid", "nonce", "timestamp", "appkey"))
        if not (senid and nonce and ts.isdigit() and appkey):
            raise WireError("070301", "缺少 senid、nonce、timestamp 或 appkey")
        if appkey != self.app_key:
            raise WireError("070302", "appKey 不存在")
        if abs(clock.now().timestamp() - int(ts)) > TIMESTAMP_WINDOW.total_seconds():
            raise WireError("070304", "timestamp 超出允许范围")
        expected = sign(
            self._secret,
            app_key=appkey,
            senid=senid,
            nonce=nonce,
            timestamp=ts,
            body=body.decode(),
        )
        if not hmac.compare_digest(request.headers.get("x-nuonuo-sign", ""), expected):
            raise WireError("070301", "签名校验失败")
        if senid in self._senids:
            raise WireError("070305", "请求重复（senid 已使用）")
        self._senids[senid] = None
        if len(self._senids) > 100_000:
            self._senids.pop(next(iter(self._senids)))
        if request.headers.get("accesstoken", "") not in self.tokens:
            raise WireError("070303", "accessToken 无效或已过期")
        user_tax = request.headers.get("usertax", "")
        if not taxid.validate(user_tax).valid:
            raise WireError("070306", "userTax 不是有效的纳税人识别号")
        return request.headers.get("method", ""), user_tax

    async def _services(self, request: Request) -> Response:
        body = await request.body()
        try:
            method, user_tax = self._authenticate(request, body)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise validate.param_error("请求体不是 JSON") from exc
            self.requests.append((method, payload))
            if method == ISSUE:
                return self._answer(SUCCESS, "开票提交成功", self._issue(payload, user_tax))
            if method == QUERY:
                return self._answer(SUCCESS, "获取成功", self._query(payload, user_tax))
            raise WireError("070307", f"method {method or '(empty)'} 不存在")
        except WireError as exc:
            return self._answer(exc.code, exc.describe)

    # -- invoices --------------------------------------------------------------------------

    def _issue(self, payload: Any, seller: str) -> dict[str, str]:
        order = validate.order(payload, user_tax=seller)
        if (seller, order.order_no) in self.by_order_no:
            raise WireError(DUPLICATE_ORDER_NO, "订单编号重复")
        litres_ml = int(order.litres * 1000)  # negative on a red invoice
        original = self._original(order, seller) if order.red else None
        if order.red:
            quota = -litres_ml if order.refined_oil else 0
        else:
            left = self.quota_ml.setdefault(seller, self.default_quota_ml)
            if order.refined_oil and litres_ml > left:
                raise WireError("E9206", f"成品油库存不足：剩余 {Decimal(left) / 1000} 升")
            quota = -litres_ml if order.refined_oil else 0
            self.quota_ml[seller] = left + quota
        now = clock.now()
        invoice = Invoice(
            serial=new_serial(now),
            seller=seller,
            order=order,
            callback_url=order.raw.get("callBackUrl") or None,
            submitted_at=now,
            quota_ml=quota,
        )
        if original is not None:
            original.reversed_by = invoice.serial
        self.invoices[invoice.serial] = invoice
        self.by_order_no[(seller, order.order_no)] = invoice
        self._spawn(self._complete(invoice))
        return {"invoiceSerialNum": invoice.serial}

    def _original(self, order: validate.Order, seller: str) -> Invoice:
        number = order.raw["invoiceNum"]
        original = next(
            (i for i in self.invoices.values() if i.number == number and i.seller == seller),
            None,
        )
        if original is None or original.order.red or original.status != "2":
            raise WireError("E9301", "原蓝字发票不存在或未开具成功")
        if original.reversed_by is not None:
            raise WireError("E9302", "原蓝字发票已红冲")
        if order.total != -original.order.total:
            raise WireError("E9303", "红冲金额须与原蓝字发票金额相反（全额红冲）")
        return original

    def _query(self, payload: Any, seller: str) -> list[dict[str, Any]]:
        if not isinstance(payload, dict):
            raise validate.param_error("请求体须为对象")
        serials = payload.get("serialNos") or []
        order_nos = payload.get("orderNos") or []
        if not isinstance(serials, list) or not isinstance(order_nos, list):
            raise validate.param_error("serialNos、orderNos 须为数组")
        if not serials and not order_nos:
            raise validate.param_error("serialNos 与 orderNos 不能同时为空")
        found = [self.invoices.get(str(s)) for s in serials]
        found += [self.by_order_no.get((seller, str(o))) for o in order_nos]
        return [i.row() for i in found if i is not None and i.seller == seller]

    async def _complete(self, invoice: Invoice) -> None:
        low, high = self.delay
        await asyncio.sleep(_rng.uniform(low, high) if high > low else low)
        cause, self._fail_next = self._fail_next, None
        if cause is not None:
            invoice.status, invoice.fail_cause = "22", cause
            if invoice.quota_ml < 0:
                self.quota_ml[invoice.seller] -= invoice.quota_ml
            if invoice.order.red:
                for other in self.invoices.values():
                    if other.reversed_by == invoice.serial:
                        other.reversed_by = None
        else:
            invoice.issued_at = clock.now()
            invoice.number = new_number(invoice.issued_at)
            invoice.status = "2"
            if invoice.quota_ml > 0:
                self.quota_ml[invoice.seller] = (
                    self.quota_ml.setdefault(invoice.seller, self.default_quota_ml)
                    + invoice.quota_ml
                )
        if invoice.callback_url:
            await self._deliver(invoice)

    async def _deliver(self, invoice: Invoice) -> None:
        assert invoice.callback_url is not None
        form = {
            "operater": "callback",
            "orderno": invoice.order_no,
            "content": orjson.dumps(invoice.callback_content()).decode(),
        }
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
        for attempt, delay in enumerate((0.0, *RESEND_DELAYS), start=1):
            if delay:
                await asyncio.sleep(delay * self.resend_scale)
            http = self._http()
            status, error = await self._attempt(http, invoice.callback_url, body, headers)
            self.delivered.append(
                Delivery(invoice.serial, invoice.callback_url, attempt, status, error)
            )
            if error is None:
                return

    def _http(self) -> httpx.AsyncClient:
        """One client per delivery transport (a new client costs a TLS context, ~40 ms)."""
        transport = self.deliver_transport
        if self._client is None or self._client[0] is not transport:
            if self._client is not None:
                self._retired.append(self._client[1])
            self._client = (transport, httpx.AsyncClient(transport=transport, timeout=5.0))
        return self._client[1]

    @staticmethod
    async def _attempt(
        http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        try:
            resp = await http.post(url, content=body, headers=headers)
        except Exception as exc:  # unreachable, timed out, or an in-process receiver crashed
            return None, type(exc).__name__
        try:
            ok = orjson.loads(resp.content).get("status") == "0000"
        except (orjson.JSONDecodeError, AttributeError):
            ok = False
        return resp.status_code, None if ok else "not acknowledged"


def create_app() -> Starlette:
    """Standalone sandbox for `uvicorn --factory` (app key and secret from settings)."""
    from forecourt.integrations.nuonuo.sandbox.standalone import create_app as build

    return build()
