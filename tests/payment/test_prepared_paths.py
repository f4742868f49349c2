"""Paths of the prepared order and payment statements that the main flows do not take."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from forecourt.kit import clock
from forecourt.order.models import Order
from forecourt.payment import repository
from forecourt.pump.models import FuellingPointRow, Nozzle
from tests.payment.conftest import Forecourt

PREPAY = {"kind": "prepay", "amount_fen": 10_000}
SECOND = timedelta(seconds=1)


async def test_a_prepay_order_is_refused_at_an_unusable_nozzle(forecourt: Forecourt) -> None:
    fc = forecourt
    missing = await fc.post("/api/v1/orders", {**PREPAY, "station_id": fc.station_id, "nozzle": 9})
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (422, "nozzle")
    async with fc.runtime.db.unit_of_work() as session:
        await session.execute(
            update(FuellingPointRow)
            .where(FuellingPointRow.station_id == fc.station_id, FuellingPointRow.number == 2)
            .values(state=10)  # offline
        )
    offline = await fc.post("/api/v1/orders", {**PREPAY, "station_id": fc.station_id, "nozzle": 3})
    assert (offline.status_code, offline.json()["code"]) == (409, "pump_offline")
    assert "fuelling point 2" in offline.json()["detail"]
    async with fc.runtime.db.unit_of_work() as session:
        await session.execute(
            update(Nozzle)
            .where(Nozzle.station_id == fc.station_id, Nozzle.number == 3)
            .values(active=False)
        )
    inactive = await fc.post("/api/v1/orders", {**PREPAY, "station_id": fc.station_id, "nozzle": 3})
    assert (inactive.status_code, inactive.json()["errors"][0]["field"]) == (422, "nozzle")


async def test_paying_an_expired_order_is_refused(forecourt: Forecourt) -> None:
    fc = forecourt
    made = await fc.post("/api/v1/orders", {**PREPAY, "station_id": fc.station_id, "nozzle": 3})
    order_id = made.json()["id"]
    async with fc.runtime.db.unit_of_work() as session:  # its time is up (the token's is not)
        await session.execute(
            update(Order).where(Order.id == order_id).values(expires_at=clock.now() - SECOND)
        )
    paid = await fc.post(f"/api/v1/orders/{order_id}/payments", {"provider": "wechatpay"})
    assert (paid.status_code, paid.json()["code"]) == (409, "order_expired")
    body = (await fc.get(f"/api/v1/orders/{order_id}")).json()
    assert body["status"] == "pending"  # the refusal rolls back; the expiry job closes it


async def test_a_payment_is_posted_for_its_provider_and_amount_once(forecourt: Forecourt) -> None:
    fc = forecourt
    made = await fc.post("/api/v1/orders", {**PREPAY, "station_id": fc.station_id, "nozzle": 3})
    order_id = made.json()["id"]
    payment = (
        await fc.post(f"/api/v1/orders/{order_id}/payments", {"provider": "wechatpay"})
    ).json()
    now = clock.now()
    post = {"payment_id": payment["id"], "transaction_id": "t-1", "paid_at": now}
    async with fc.runtime.db.unit_of_work() as session:
        amount = payment["amount_fen"]
        assert (
            await repository.mark_paid(session, **post, amount_fen=amount, provider="alipay")
            is None
        )
        assert await repository.mark_paid(session, **post, amount_fen=amount + 1) is None
        paid = await repository.mark_paid(session, **post, amount_fen=amount, provider="wechatpay")
        assert paid == repository.PaidPayment(
            id=payment["id"],
            order_id=order_id,
            member_id=fc.member.id,
            provider="wechatpay",
            amount_fen=amount,
            refunded_fen=0,
        )
        assert await repository.mark_paid(session, **post, amount_fen=amount) is None
    async with fc.runtime.db.read_only() as session:
        stored = await repository.payment(session, payment["id"])
        assert stored is not None
        assert (stored.status, stored.transaction_id, stored.paid_at) == ("paid", "t-1", now)
