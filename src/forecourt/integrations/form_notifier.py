"""Sandbox delivery of form-encoded notifications (Alipay, UnionPay) with a resend schedule.

Each vendor supplies its schedule, what counts as an acknowledgement and which field names
the event; the sandboxes' `delivery.py` modules hold those facts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from forecourt.kit import clock

log = logging.getLogger(__name__)

Acked = Callable[[int | None, str], bool]
EventId = Callable[[dict[str, str]], str]


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of a notification and what came back."""

    event_id: str  # Alipay notify_id; UnionPay queryId-txnType
    url: str
    attempt: int  # 1 = first delivery
    status: int | None  # None when the receiver could not be reached
    body: str
    acked: bool
    at: datetime
    fields: dict[str, str]


class FormNotifier:
    """Background deliveries, each a task that resends until acknowledged."""

    def __init__(
        self,
        *,
        vendor: str,
        resend_after: tuple[float, ...],
        acked: Acked,
        event_id: EventId,
        scale: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        self.vendor = vendor
        self.resend_after = resend_after
        self.is_ack = acked
        self.event_id = event_id
        self.scale = scale
        self.timeout = timeout
        self.attempts: list[DeliveryAttempt] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self, url: str, fields: dict[str, str], *, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        """Start delivering `fields` to `url` in the background."""
        task = asyncio.get_running_loop().create_task(self._deliver(url, fields, transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, url: str, fields: dict[str, str], transport: httpx.AsyncBaseTransport | None
    ) -> None:
        delays = (0.0, *self.resend_after)
        async with httpx.AsyncClient(transport=transport, timeout=self.timeout) as http:
            for attempt, delay in enumerate(delays, start=1):
                if delay:
                    await asyncio.sleep(delay * self.scale)
                status: int | None = None
                body = ""
                try:
                    resp = await http.post(url, data=fields)
                    status, body = resp.status_code, resp.text
                except httpx.HTTPError as exc:
                    body = type(exc).__name__
                acked = self.is_ack(status, body)
                self.attempts.append(
                    DeliveryAttempt(
                        event_id=self.event_id(fields),
                        url=url,
                        attempt=attempt,
                        status=status,
                        body=body[:200],
                        acked=acked,
                        at=clock.now(),
                        fields=dict(fields),
                    )
                )
                if acked:
                    return
        log.info(
            "sandbox gave up a notification",
            extra={"vendor": self.vendor, "attempts": len(delays)},
        )

    @property
    def pending(self) -> int:
        """Deliveries not yet acknowledged or abandoned."""
        return len(self._tasks)

    async def settle(self) -> None:
        """Wait until every delivery has been acknowledged or abandoned."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel pending deliveries."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
