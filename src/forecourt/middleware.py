"""Pure ASGI middleware: request id, access log and Prometheus metrics."""

from __future__ import annotations

import os
import re
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forecourt.logs import AccessLog, request_id_var

access = AccessLog("forecourt.access")

REQUESTS = Counter("forecourt_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "forecourt_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEADER = b"x-request-id"
_metrics: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The metric children of one (method, route, status), looked up once each."""
    key = (method, route, status)
    found = _metrics.get(key)
    if found is None:
        found = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        _metrics[key] = found
    return found


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is sane, else a new random one."""
    for name, value in scope.get("headers") or ():
        if name == _HEADER:
            incoming: str = value.decode("latin-1")
            if _SAFE_ID.match(incoming):
                return incoming
            break
    return os.urandom(16).hex()


class RequestContext:
    """Give every request an id (kept from X-Request-ID when sane), time it and count it."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one HTTP or WebSocket exchange."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()
        id_header = (_HEADER, rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope.get("method", "WS")
            counter, latency = _series(method, template, status)
            counter.inc()
            latency.observe(elapsed)
            if self.access_log:
                access.request(
                    request_id=rid,
                    method=method,
                    path=scope.get("path"),
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            request_id_var.reset(token)
