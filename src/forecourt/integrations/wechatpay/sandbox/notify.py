"""Notification delivery with WeChat Pay's resend schedule.

WeChat POSTs the notification and waits up to 5 s for a 2xx; otherwise it resends after
15s,15s,30s,3m,10m,20m,30m,30m,30m,60m,3h,3h,3h,6h,6h. Each attempt is signed afresh
(new timestamp and nonce) over the same body and notification id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import httpx

from forecourt.integrations.wechatpay.sandbox.state import Delivery
from forecourt.kit import clock

log = logging.getLogger(__name__)

RESEND_DELAYS: tuple[float, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)  # fmt: skip
ATTEMPT_TIMEOUT = 5.0
USER_AGENT = "Mozilla/4.0"

Signer = Callable[[bytes, datetime, bool], dict[str, str]]
TransportGetter = Callable[[], httpx.AsyncBaseTransport | None]


class Notifier:
    """Background deliveries: a task per notification, every attempt recorded."""

    def __init__(self, *, sign: Signer, transport: TransportGetter, resend_scale: float) -> None:
        self._sign = sign
        self._transport = transport
        self.resend_scale = resend_scale
        self.delivered: list[Delivery] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self._clients: dict[int, tuple[httpx.AsyncBaseTransport | None, httpx.AsyncClient]] = {}

    def _http(self) -> httpx.AsyncClient:
        """One client per delivery transport (a new client costs a TLS context, ~40 ms)."""
        transport = self._transport()
        known = self._clients.get(id(transport))
        if known is None or known[0] is not transport:
            known = (transport, httpx.AsyncClient(transport=transport, timeout=ATTEMPT_TIMEOUT))
            self._clients[id(transport)] = known
        return known[1]

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Track a background coroutine so `aclose` can cancel it."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def send(
        self, *, url: str, body: bytes, event_id: str, event_type: str, corrupt: bool = False
    ) -> asyncio.Task[None]:
        """Deliver `body` to `url` in the background, resending until a 2xx."""
        return self.spawn(self._run(url, body, event_id, event_type, corrupt))

    async def _attempt(
        self, http: httpx.AsyncClient, url: str, body: bytes, corrupt: bool
    ) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **self._sign(body, clock.now(), corrupt),
        }
        try:
            resp = await http.post(url, content=body, headers=headers)
        except Exception as exc:  # unreachable, timed out, or an in-process receiver crashed
            return None, type(exc).__name__
        return resp.status_code, None

    async def _run(
        self, url: str, body: bytes, event_id: str, event_type: str, corrupt: bool
    ) -> None:
        for attempt, delay in enumerate((0.0, *RESEND_DELAYS), start=1):
            if delay:
                await asyncio.sleep(delay * self.resend_scale)
            status, error = await self._attempt(self._http(), url, body, corrupt)
            self.delivered.append(Delivery(event_id, event_type, url, attempt, status, error))
            if status is not None and 200 <= status < 300:
                return
            log.info(
                "wechatpay sandbox notification not acknowledged",
                extra={"event_type": event_type, "attempt": attempt, "status": status},
            )

    async def join(self) -> None:
        """Wait until every pending delivery and background task has finished."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel pending deliveries and resends."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        clients, self._clients = list(self._clients.values()), {}
        for transport, http in clients:
            if transport is None:  # an injected transport belongs to whoever injected it
                await http.aclose()
