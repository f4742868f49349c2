"""Post-pay through WeChat Pay: order -> sale locked -> prepay -> notification -> cleared."""

from __future__ import annotations

from sqlalchemy import func, select

from forecourt.outbox.models import OutboxEvent
from forecourt.payment.models import Payment
from forecourt.pump.models import Announcement, PumpSale
from tests.fixtures.auth import make_member, make_staff, member_headers, staff_headers
from tests.payment.conftest import Forecourt
from tests.pump.helpers import eventually


async def _sale_row(fc: Forecourt, seq: int) -> PumpSale:
    async with fc.runtime.db.read_only() as session:
        stmt = select(PumpSale).where(PumpSale.station_id == fc.station_id, PumpSale.seq == seq)
        row = (await session.scalars(stmt)).one()
        session.expunge(row)
        return row


async def test_postpay_wechat_four_steps(forecourt: Forecourt) -> None:
    fc = forecourt
    await fc.sale(seq=1, nozzle=1, volume_ml=30_000)  # 30 L of 92# at 7.76 = 232.80
    made = await fc.post(
        "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}, key="k-1"
    )
    assert made.status_code == 201, made.text
    order = made.json()
    assert (order["status"], order["payable_fen"], order["volume_ml"]) == (
        "pending",
        23_280,
        30_000,
    )
    assert order["lines"] == [
        {"code": "list_price", "label": "92#汽油 30.00L × ¥7.76", "amount_fen": 23_280}
    ]
    assert len(order["id"]) == 32
    sale = await _sale_row(fc, 1)
    assert (sale.status, sale.locked_by) == ("locked", order["id"])

    paid = await fc.post(
        f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"}, key="p-1"
    )
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert payment["status"] == "pending"
    params = payment["client_params"]
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["package"].startswith("prepay_id=")
    assert params["signType"] == "RSA"

    prepay_id = params["package"].removeprefix("prepay_id=")
    cashier = await fc.http.get(f"/sandbox/wechatpay/sandbox/cashier?prepay_id={prepay_id}")
    assert cashier.status_code == 200
    assert "沙箱" in cashier.text
    assert "232.80" in cashier.text
    assert (await fc.http.get("/sandbox/paypal/sandbox/cashier")).status_code == 404

    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()

    detail = (await fc.get(f"/api/v1/orders/{order['id']}")).json()
    assert (detail["status"], detail["paid_fen"], detail["provider"]) == (
        "completed",
        23_280,
        "wechatpay",
    )
    sale = await _sale_row(fc, 1)
    assert (sale.status, sale.cleared_by) == ("cleared", order["id"])

    async def clear_sent() -> bool:
        return any(c["type"] == "clear_sale" for c in fc.gateway.commands)

    await eventually(clear_sent, what="clear_sale sent to the pump")

    async def announced() -> list[str]:
        async with fc.runtime.db.read_only() as session:
            return list(await session.scalars(select(Announcement.text)))

    texts = await eventually(announced, what="speaker announcement")
    assert texts == ["1号枪 微信支付 收款 232.80元"]

    staff = await make_staff(fc.runtime, role="attendant", station_ids=[fc.station_id])
    seen = await fc.http.get(
        f"/api/v1/admin/stations/{fc.station_id}/orders", headers=staff_headers(fc.runtime, staff)
    )
    assert seen.status_code == 200, seen.text
    [row] = seen.json()
    assert row["id"] == order["id"]
    assert row["payer_phone"] is not None
    assert "****" in row["payer_phone"]
    assert row["sale_seq"] == 1
    assert row["nozzle"] == 1


async def test_idempotency_key_replays_and_refuses_another_body(forecourt: Forecourt) -> None:
    fc = forecourt
    await fc.sale(seq=1, nozzle=1)
    body = {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
    first = await fc.post("/api/v1/orders", body, key="same")
    again = await fc.post("/api/v1/orders", body, key="same")
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    other = await fc.post("/api/v1/orders", {**body, "nozzle": 2}, key="same")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    order_id = first.json()["id"]
    p1 = await fc.post(f"/api/v1/orders/{order_id}/payments", {"provider": "wechatpay"}, key="pay")
    p2 = await fc.post(f"/api/v1/orders/{order_id}/payments", {"provider": "wechatpay"}, key="pay")
    assert p1.json() == p2.json()
    async with fc.runtime.db.read_only() as session:
        count = await session.scalar(select(func.count()).select_from(Payment))
    assert count == 1


async def test_wrong_nozzle_protection(forecourt: Forecourt) -> None:
    fc = forecourt
    await fc.sale(seq=1, nozzle=1)
    mine = await fc.post(
        "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
    )
    assert mine.status_code == 201
    other = await make_member(fc.runtime, openid="o-other")
    theirs = await fc.post(
        "/api/v1/orders",
        {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1},
        headers=member_headers(fc.runtime, other.id),
    )
    assert theirs.status_code == 409
    assert theirs.json()["code"] == "no_payable_sale"
    steal = await fc.post(
        f"/api/v1/orders/{mine.json()['id']}/payments",
        {"provider": "wechatpay"},
        headers=member_headers(fc.runtime, other.id),
    )
    assert steal.status_code == 404
    assert steal.json()["code"] == "order_not_found"


async def test_bad_input_is_refused_with_field_and_code(forecourt: Forecourt) -> None:
    fc = forecourt
    await fc.sale(seq=1, nozzle=1)
    base = {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
    zero = await fc.post("/api/v1/orders", {**base, "amount_fen": 0})
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["field"].endswith("amount_fen")
    above = await fc.post("/api/v1/orders", {**base, "amount_fen": 23_281})
    assert (above.status_code, above.json()["code"]) == (422, "amount_above_sale")
    cap = await fc.post(
        "/api/v1/orders",
        {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 200_001},
    )
    assert (cap.status_code, cap.json()["code"]) == (422, "preset_above_cap")
    order = (await fc.post("/api/v1/orders", base)).json()
    unknown = await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "paypal"})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_provider")
    paid = await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    await fc.wechat.complete(paid.json()["id"])
    await fc.wechat.join()
    twice = await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    assert (twice.status_code, twice.json()["code"]) == (409, "order_already_paid")
    cleared = await fc.post("/api/v1/orders", {**base, "sale_seq": 1})
    assert (cleared.status_code, cleared.json()["code"]) == (409, "no_payable_sale")
    async with fc.runtime.db.read_only() as session:
        events = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.topic == "order.paid")
        )
    assert events == 1
