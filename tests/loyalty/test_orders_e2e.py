"""End to end: the tier discount on the receipt, pay-at-pump settled at the discounted rate,
points earned through the outbox and reversed on a refund."""

from __future__ import annotations

from forecourt.loyalty.models import PointsEntry
from tests.fixtures.auth import make_staff, staff_headers
from tests.loyalty.conftest import check_ledger, entries, set_tier
from tests.payment.conftest import Forecourt, forecourt  # noqa: F401 (fixture)
from tests.pump.conftest import link  # noqa: F401 (fixture)
from tests.pump.helpers import eventually, sale_report


async def _ledger(fc: Forecourt, count: int) -> list[PointsEntry]:
    async def enough() -> list[PointsEntry] | None:
        rows = await entries(fc.runtime, fc.member.id)
        return rows if len(rows) >= count else None

    return await eventually(enough, what=f"{count} ledger entries")


async def test_postpay_gold_discount_points_and_refund(forecourt: Forecourt) -> None:  # noqa: F811
    fc = forecourt
    await set_tier(fc.runtime, fc.member.id, "gold")
    await fc.sale(seq=1, nozzle=1, volume_ml=30_000)  # 30 L of 92# at 7.76 = 232.80
    made = await fc.post(
        "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
    )
    assert made.status_code == 201, made.text
    order = made.json()
    assert order["lines"] == [
        {"code": "list_price", "label": "92#汽油 30.00L × ¥7.76", "amount_fen": 23_280},
        {"code": "member_tier", "label": "金卡 每升优惠¥0.20", "amount_fen": -600},
    ]
    assert (order["list_fen"], order["discount_fen"], order["payable_fen"]) == (23_280, 600, 22_680)
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    assert payment["amount_fen"] == 22_680
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()
    [earn] = await _ledger(fc, 1)
    assert (earn.kind, earn.points, earn.multiplier_pct, earn.basis_fen) == (
        "earn",
        340,
        150,
        22_680,
    )

    attendant = await make_staff(fc.runtime, role="attendant", station_ids=[fc.station_id])
    asked = await fc.http.post(
        f"/api/v1/admin/orders/{order['id']}/refunds",
        json={"amount_fen": 11_340, "reason": "部分退款"},
        headers=staff_headers(fc.runtime, attendant),
    )
    assert asked.status_code == 201, asked.text
    await fc.wechat.join()
    await fc.refunds_settled()
    rows = await _ledger(fc, 2)
    assert [(e.kind, e.points) for e in rows] == [("earn", 340), ("reverse", -170)]
    assert (await check_ledger(fc.runtime, fc.member.id)).points_balance == 170
    card = (await fc.get("/api/v1/loyalty/card")).json()
    assert (card["tier"]["code"], card["points_balance"], card["visits"], card["spend_fen"]) == (
        "gold",
        170,
        1,
        11_340,
    )


async def test_pay_at_pump_silver_settles_at_the_discounted_rate(forecourt: Forecourt) -> None:  # noqa: F811
    fc = forecourt
    await set_tier(fc.runtime, fc.member.id, "silver")
    made = await fc.post(
        "/api/v1/orders",
        {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 30_000},
    )
    assert made.status_code == 201, made.text
    order = made.json()
    # 300.00 buys 36.057 L of 95# at 8.32: 0.10/L off = 3.61.
    assert order["lines"][1] == {
        "code": "member_tier",
        "label": "银卡 每升优惠¥0.10",
        "amount_fen": -361,
    }
    assert order["payable_fen"] == 29_639
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()

    async def authorised() -> dict[str, object] | None:
        return next((c for c in fc.gateway.commands if c["type"] == "authorise"), None)

    command = await eventually(authorised, what="authorise sent")
    assert command["preset"] == {"kind": "amount_fen", "value": 30_000}  # the list amount
    # 29.29 L pumped = 243.69 at list price, 2.93 off: 240.76 kept, 55.63 back.
    await fc.gateway.sale(
        2,
        sale_report(
            seq=1, nozzle=3, grade="95", volume_ml=29_290, unit_price_fen=832, auth_ref=order["id"]
        ),
    )

    async def settled() -> dict[str, object] | None:
        body = (await fc.get(f"/api/v1/orders/{order['id']}")).json()
        return body if body["refunded_fen"] == 5_563 else None

    await fc.wechat.join()
    body = await eventually(settled, what="difference refunded")
    assert (body["settled_fen"], body["paid_fen"]) == (24_076, 29_639)
    rows = await _ledger(fc, 1)
    assert [(e.kind, e.points, e.basis_fen) for e in rows] == [("earn", 288, 24_076)]
