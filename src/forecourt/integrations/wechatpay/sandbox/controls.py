"""Sandbox-only routes under `/sandbox/`: the demo cashier and HTTP test controls.

Not part of WeChat Pay's API: unsigned, unauthenticated, and only ever served by a sandbox.
The cashier is also where an H5 order's `h5_url` points (`?prepay_id=…&package=…`, like
WeChat's checkmweb page); a `redirect_url` (URL-encoded, http(s) only) appended by the
merchant is where the browser goes after paying.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.sandbox import pages
from forecourt.integrations.wechatpay.sandbox.state import H5_URL_TTL
from forecourt.kit import clock

if TYPE_CHECKING:
    from forecourt.integrations.wechatpay.sandbox import WeChatPaySandbox

JSON = "application/json; charset=utf-8"
CASHIER_PATH = "/sandbox/cashier"
MAX_REDIRECT = 2048


def request_base(request: Request) -> str:
    """This sandbox app's URL as the request reached it: origin + root_path (mount prefix)."""
    root = quote(str(request.scope.get("root_path", "")))
    return f"{request.url.scheme}://{request.url.netloc}{root}".rstrip("/")


def redirect_target(value: str) -> str | None:
    """`value` if it is a safe place to send the browser (absolute http(s) URL), else None."""
    if len(value) > MAX_REDIRECT or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return value


def _bad_redirect() -> Response:
    return HTMLResponse(
        pages.message("redirect_url 不合法", "redirect_url must be an absolute http(s) URL"),
        status_code=400,
    )


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


async def _fields(request: Request) -> Mapping[str, Any]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(orjson.JSONDecodeError):
            data = orjson.loads(raw)
            return data if isinstance(data, dict) else {}
        return {}
    return {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}


def routes(sandbox: WeChatPaySandbox) -> list[Route]:
    """The `/sandbox/*` routes of one sandbox."""

    async def cashier(request: Request) -> Response:
        q = request.query_params
        order = sandbox.orders.get(q.get("out_trade_no", ""))
        if order is None and q.get("prepay_id"):
            wanted = q["prepay_id"]
            order = next((o for o in sandbox.orders.values() if o.prepay_id == wanted), None)
        if order is None:
            return HTMLResponse(pages.message("订单不存在", "unknown order"), status_code=404)
        redirect = q.get("redirect_url") or None
        if redirect is not None and redirect_target(redirect) is None:
            return _bad_redirect()
        package = q.get("package")
        if package is not None:  # opened through an h5_url: WeChat's checks of that link
            issued = order.h5_links.get(package)
            if issued is None:
                return HTMLResponse(
                    pages.message("商家参数格式有误，请联系商家解决", "unknown h5_url"),
                    status_code=403,
                )
            if clock.now() - issued >= H5_URL_TTL:
                return HTMLResponse(
                    pages.message(
                        "支付请求已失效，请重新发起支付",
                        "h5_url expired (valid 5 minutes): prepay again for a new one",
                        back=redirect,
                    ),
                    status_code=403,
                )
        root = str(request.scope.get("root_path", ""))
        page = pages.cashier(order, merchant=sandbox.mchid, root_path=root, redirect_url=redirect)
        return HTMLResponse(page)

    async def pay(request: Request) -> Response:
        fields = await _fields(request)
        out_trade_no = str(fields.get("out_trade_no", ""))
        redirect = str(fields.get("redirect_url") or "") or None
        if redirect is not None and redirect_target(redirect) is None:
            return _bad_redirect()
        try:
            await sandbox.complete(out_trade_no)
        except (LookupError, ValueError) as exc:
            return HTMLResponse(
                pages.message("无法支付 / cannot pay", str(exc), back=redirect), status_code=409
            )
        if redirect is not None:
            return RedirectResponse(redirect, status_code=303)
        return HTMLResponse(pages.message("支付成功 / paid", f"{out_trade_no} (sandbox)"))

    async def complete(request: Request) -> Response:
        out_trade_no = str((await _fields(request)).get("out_trade_no", ""))
        try:
            await sandbox.complete(out_trade_no)
        except LookupError as exc:
            return _json({"error": str(exc)}, 404)
        except ValueError as exc:
            return _json({"error": str(exc)}, 409)
        order = sandbox.orders[out_trade_no]
        return _json(
            {
                "out_trade_no": out_trade_no,
                "trade_state": order.trade_state,
                "transaction_id": order.transaction_id or "",
            }
        )

    async def deliveries(request: Request) -> Response:
        rows = [
            {
                "event_id": d.event_id,
                "event_type": d.event_type,
                "url": d.url,
                "attempt": d.attempt,
                "status": d.status,
                "error": d.error,
                "at": d.at.isoformat(),
            }
            for d in sandbox.delivered
        ]
        return _json({"deliveries": rows})

    async def tamper(request: Request) -> Response:
        data = await _fields(request)
        amount = data.get("amount")
        sandbox.tamper_next_notification(
            amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            signature=bool(data.get("signature")),
        )
        return _json({"armed": True})

    async def keys(request: Request) -> Response:
        identity = sandbox.identity
        return _json(
            {
                "mode": "public_key" if identity.public_key_mode else "certificate",
                "serial": identity.serial,
                "certificate_serial": identity.certificate_serial,
                "public_key_id": identity.public_key_id,
                "platform_public_key": crypto.public_pem(identity.public_key),
                "platform_certificate": crypto.certificate_pem(identity.certificate),
            }
        )

    return [
        Route(CASHIER_PATH, cashier, methods=["GET"]),
        Route("/sandbox/pay", pay, methods=["POST"]),
        Route("/sandbox/complete", complete, methods=["POST"]),
        Route("/sandbox/deliveries", deliveries, methods=["GET"]),
        Route("/sandbox/tamper", tamper, methods=["POST"]),
        Route("/sandbox/keys", keys, methods=["GET"]),
    ]
