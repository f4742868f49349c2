"""Cancel, expiry, refused authorisation, unknown-order callbacks, concurrent keys."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
from sqlalchemy import select

from forecourt.kit import clock
from forecourt.order.models import Order
from forecourt.payment import tasks
from forecourt.payment.models import Payment, PaymentNotification, Refund
from forecourt.payment.providers import ProviderName
from forecourt.pump.models import Gateway, PumpSale
from tests.payment.conftest import Forecourt
from tests.payment.test_faults import Recording
from tests.pump.helpers import eventually


async def _sale_status(fc: Forecourt, seq: int) -> tuple[str, str | None]:
    async with fc.runtime.db.read_only() as session:
        row = (
            await session.scalars(
                select(PumpSale).where(PumpSale.station_id == fc.station_id, PumpSale.seq == seq)
            )
        ).one()
        return row.status, row.locked_by


async def test_cancel_closes_the_payment_and_frees_the_sale(forecourt: Forecourt) -> None:
    fc = forecourt
    await fc.sale(seq=1, nozzle=1)
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
        )
    ).json()
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    cancelled = await fc.post(f"/api/v1/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["close_reason"]) == (
        "cancelled",
        "cancelled",
    )
    assert await _sale_status(fc, 1) == ("payable", None)
    assert fc.wechat.orders[payment["id"]].trade_state == "CLOSED"
    again = await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    assert (again.status_code, again.json()["code"]) == (409, "order_not_payable")


async def test_unpaid_orders_expire_and_release_the_sale(forecourt: Forecourt) -> None:
    fc = forecourt
    await fc.sale(seq=1, nozzle=1)
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
        )
    ).json()
    await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    clock.travel(timedelta(seconds=fc.runtime.settings.payment_expiry_seconds + 1))
    await tasks.expire_orders(fc.runtime)
    async with fc.runtime.db.read_only() as session:
        row = await session.get(Order, order["id"])
        assert row is not None
        assert row.status == "expired"
    assert await _sale_status(fc, 1) == ("payable", None)


async def test_paid_prepay_on_an_offline_pump_is_refunded(forecourt: Forecourt) -> None:
    fc = forecourt
    made = await fc.post(
        "/api/v1/orders",
        {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 20_000},
    )
    order_id = made.json()["id"]
    payment = (
        await fc.post(f"/api/v1/orders/{order_id}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.gateway.online(False)  # the station's gateway goes offline while the driver pays

    async def offline() -> bool:
        async with fc.runtime.db.read_only() as session:
            gw = (
                await session.scalars(select(Gateway).where(Gateway.station_id == fc.station_id))
            ).one()
            return not gw.online

    await eventually(offline, what="gateway offline")
    refused = await fc.post(
        "/api/v1/orders",
        {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 20_000},
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "pump_offline")
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()

    async def refunded() -> bool:
        body = (await fc.get(f"/api/v1/orders/{order_id}")).json()
        return bool(body["status"] == "refunded")

    await eventually(refunded, what="order refunded")
    async with fc.runtime.db.read_only() as session:
        kinds = [(r.kind, r.status, r.amount_fen) for r in await session.scalars(select(Refund))]
    assert kinds == [("pump_refused", "succeeded", 20_000)]


async def test_notification_for_an_unknown_order_is_acknowledged_and_kept(
    forecourt: Forecourt,
) -> None:
    fc = forecourt

    recording = Recording(httpx.ASGITransport(app=fc.http._transport.app))  # type: ignore[attr-defined]
    recording.down = True
    fc.runtime.gateways.route_notifications(recording)
    order = (
        await fc.post(
            "/api/v1/orders",
            {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 5_000},
        )
    ).json()
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(payment["id"])
    await asyncio.sleep(0.05)
    await fc.wechat.aclose()
    headers, body = recording.requests[0]
    async with (
        fc.runtime.db.unit_of_work() as session
    ):  # we lost the payment row (restore from backup...)
        row = await session.get(Payment, payment["id"])
        assert row is not None
        row.id = (
            "261125000000T000AAAAAAAAAAAAAAAA"  # a different number: the callback no longer matches
        )
    resp = await fc.http.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
    assert resp.status_code == 204
    async with fc.runtime.db.read_only() as session:
        notes = [
            (n.outcome, n.out_trade_no) for n in await session.scalars(select(PaymentNotification))
        ]
    assert notes == [("unknown_order", payment["id"])]


async def test_concurrent_requests_with_one_key_make_one_order(forecourt: Forecourt) -> None:
    fc = forecourt
    body = {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 10_000}
    answers = await asyncio.gather(
        *(fc.post("/api/v1/orders", body, key="tap-tap-tap") for _ in range(5))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1


async def test_payment_after_cancel_is_refunded_at_once(forecourt: Forecourt) -> None:
    fc = forecourt
    await fc.sale(seq=1, nozzle=1)
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
        )
    ).json()
    payment = (
        await fc.post(
            f"/api/v1/orders/{order['id']}/payments", {"provider": "unionpay", "channel": "h5"}
        )
    ).json()
    params = payment["client_params"]
    fields = json.loads(params["form_fields"])
    opened = await fc.http.post(
        params["form_action"].removeprefix("http://127.0.0.1:8000"), data=fields
    )
    assert opened.status_code == 200
    cancelled = await fc.post(f"/api/v1/orders/{order['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    sandbox = fc.runtime.gateways.sandboxes[ProviderName.UNIONPAY]
    await sandbox.complete(payment["id"])  # the payer finished the open UnionPay form anyway
    await sandbox.settle()  # type: ignore[attr-defined]
    await fc.refunds_settled()
    async with fc.runtime.db.read_only() as session:
        refunds = [(r.kind, r.status, r.amount_fen) for r in await session.scalars(select(Refund))]
        paid = await session.get(Payment, payment["id"])
        assert paid is not None
        assert paid.status == "paid"
    assert refunds == [("late_payment", "succeeded", 23_280)]
    body = (await fc.get(f"/api/v1/orders/{order['id']}")).json()
    assert (body["status"], body["paid_fen"]) == ("cancelled", 0)
