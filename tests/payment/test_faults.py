"""Fault tests: replayed and shuffled callbacks, a dead API during payment, tampering."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from forecourt.kit import clock
from forecourt.outbox.models import OutboxEvent
from forecourt.payment import callbacks, tasks
from forecourt.payment.models import Payment, PaymentNotification
from tests.payment.conftest import Forecourt


class Recording(httpx.AsyncBaseTransport):
    """Forward to the app, keeping every request; or answer 503 while `down`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.requests.append((dict(request.headers), body))
        if self.down:
            return httpx.Response(503, json={"code": "FAIL", "message": "api down"})
        return await self.inner.handle_async_request(request)


async def _count(fc: Forecourt, stmt: object) -> int:
    async with fc.runtime.db.read_only() as session:
        return int(await session.scalar(stmt) or 0)  # type: ignore[call-overload]


async def _paid_events(fc: Forecourt) -> int:
    stmt = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.topic == "order.paid")
    return await _count(fc, stmt)


async def _start(fc: Forecourt, recording: Recording) -> tuple[str, str]:
    fc.runtime.gateways.route_notifications(recording)
    await fc.sale(seq=1, nozzle=1)
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
        )
    ).json()
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    return order["id"], payment["id"]


@pytest.mark.parametrize("replays", [1, 4, 15])
async def test_replayed_notifications_and_query_post_once(
    forecourt: Forecourt, replays: int
) -> None:
    fc = forecourt
    transport = httpx.ASGITransport(app=fc.http._transport.app)  # type: ignore[attr-defined]
    recording = Recording(transport)
    recording.down = True  # the first delivery is lost; we replay what was sent
    order_id, payment_id = await _start(fc, recording)
    await fc.wechat.complete(payment_id)
    await asyncio.sleep(0.05)
    await fc.wechat.aclose()  # stop the sandbox's own resends
    [(headers, body)] = recording.requests[:1]
    recording.down = False
    rng = random.Random(replays)

    async def replay() -> int:
        await asyncio.sleep(rng.random() / 100)
        resp = await fc.http.post(
            "/api/v1/payments/notify/wechatpay", content=body, headers=headers
        )
        return resp.status_code

    async def query() -> str:
        await asyncio.sleep(rng.random() / 100)
        async with fc.runtime.db.unit_of_work() as session:
            return await callbacks.query_payment(
                session,
                payment_id=payment_id,
                gateways=fc.runtime.gateways,
                settings=fc.runtime.settings,
                now=clock.now(),
            )

    jobs = [replay() for _ in range(replays)] + [query()]
    rng.shuffle(jobs)
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert [r for r in results if isinstance(r, int)] == [204] * replays
    assert await _paid_events(fc) == 1
    order = (await fc.get(f"/api/v1/orders/{order_id}")).json()
    assert (order["status"], order["paid_fen"]) == ("completed", 23_280)
    stored = await _count(fc, select(func.count()).select_from(PaymentNotification))
    assert stored == 1  # one provider event, however often it came


async def test_api_down_when_paid_then_the_query_job_posts_it(forecourt: Forecourt) -> None:
    fc = forecourt
    transport = httpx.ASGITransport(app=fc.http._transport.app)  # type: ignore[attr-defined]
    recording = Recording(transport)
    recording.down = True  # the API "process" is gone while WeChat confirms the payment
    order_id, payment_id = await _start(fc, recording)
    await fc.wechat.complete(payment_id)
    await asyncio.sleep(0.05)
    await fc.wechat.aclose()
    assert (await fc.get(f"/api/v1/orders/{order_id}")).json()["status"] == "pending"
    clock.travel(timedelta(seconds=fc.runtime.settings.payment_query_after_seconds + 1))
    await tasks.query_pending(fc.runtime)  # after the restart, the periodic job
    order = (await fc.get(f"/api/v1/orders/{order_id}")).json()
    assert (order["status"], order["paid_fen"]) == ("completed", 23_280)
    assert await _paid_events(fc) == 1


@pytest.mark.parametrize("fault", ["amount", "signature"])
async def test_tampered_notification_is_refused(forecourt: Forecourt, fault: str) -> None:
    fc = forecourt
    transport = httpx.ASGITransport(app=fc.http._transport.app)  # type: ignore[attr-defined]
    recording = Recording(transport)
    order_id, payment_id = await _start(fc, recording)
    if fault == "amount":
        fc.wechat.tamper_next_notification(amount=1)
    else:
        fc.wechat.tamper_next_notification(signature=True)
    await fc.wechat.complete(payment_id)
    await asyncio.sleep(0.1)
    await fc.wechat.aclose()
    first = fc.wechat.delivered[0]
    assert first.status is not None
    assert first.status >= 400
    assert (await fc.get(f"/api/v1/orders/{order_id}")).json()["status"] == "pending"
    async with fc.runtime.db.read_only() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        assert payment.status == "pending"
    assert await _paid_events(fc) == 0
