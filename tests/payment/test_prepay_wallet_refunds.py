"""Pay-at-pump settlement, the wallet, refunds with approval."""

from __future__ import annotations

from sqlalchemy import select

from forecourt.payment.models import Refund
from forecourt.wallet.models import WalletEntry
from tests.fixtures.auth import insert_station, make_staff, staff_headers
from tests.payment.conftest import Forecourt
from tests.pump.helpers import eventually, sale_report


async def _order(fc: Forecourt, order_id: str) -> dict[str, object]:
    resp = await fc.get(f"/api/v1/orders/{order_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


async def _refunds(fc: Forecourt, order_id: str) -> list[Refund]:
    async with fc.runtime.db.read_only() as session:
        stmt = select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)
        rows = list(await session.scalars(stmt))
        session.expunge_all()
        return rows


async def test_pay_at_pump_settles_and_refunds_the_difference(forecourt: Forecourt) -> None:
    fc = forecourt
    made = await fc.post(
        "/api/v1/orders",
        {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 30_000},
    )
    assert made.status_code == 201, made.text
    order_id = made.json()["id"]
    assert made.json()["unit_price_fen"] == 832
    payment = (
        await fc.post(f"/api/v1/orders/{order_id}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()

    async def authorised() -> dict[str, object] | None:
        return next((c for c in fc.gateway.commands if c["type"] == "authorise"), None)

    command = await eventually(authorised, what="authorise sent")
    assert command["auth_ref"] == order_id
    assert (await _order(fc, order_id))["status"] == "fuelling"
    # 29.29 L at 8.32 = 243.69; the preset was 300.00, so 56.31 comes back at once.
    await fc.gateway.sale(
        2,
        sale_report(
            seq=1, nozzle=3, grade="95", volume_ml=29_290, unit_price_fen=832, auth_ref=order_id
        ),
    )

    async def settled() -> dict[str, object] | None:
        body = await _order(fc, order_id)
        return body if body["refunded_fen"] == 5_631 else None

    await fc.wechat.join()
    body = await eventually(settled, what="difference refunded")
    assert (body["status"], body["settled_fen"], body["paid_fen"]) == ("completed", 24_369, 30_000)
    [refund] = await _refunds(fc, order_id)
    assert (refund.kind, refund.status, refund.amount_fen) == ("settlement", "succeeded", 5_631)


async def test_wallet_topup_bonus_pay_refund_and_withdraw(forecourt: Forecourt) -> None:
    fc = forecourt
    topup = await fc.post("/api/v1/wallet/topups", {"amount_fen": 50_000}, key="t1")
    assert topup.status_code == 201, topup.text
    assert topup.json()["bonus_fen"] == 4_000
    pay = (
        await fc.post(f"/api/v1/orders/{topup.json()['id']}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(pay["id"])
    await fc.wechat.join()
    wallet = (await fc.get("/api/v1/wallet")).json()
    assert (wallet["balance_fen"], wallet["principal_fen"], wallet["bonus_fen"]) == (
        54_000,
        50_000,
        4_000,
    )

    await fc.sale(seq=1, nozzle=1, volume_ml=30_000)  # 232.80
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
        )
    ).json()
    paid = await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wallet"})
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "paid"
    assert (await _order(fc, order["id"]))["status"] == "completed"
    wallet = (await fc.get("/api/v1/wallet")).json()
    assert (wallet["principal_fen"], wallet["bonus_fen"]) == (30_720, 0)  # bonus spent first

    manager = await make_staff(fc.runtime, role="station_manager", station_ids=[fc.station_id])
    refund = await fc.http.post(
        f"/api/v1/admin/orders/{order['id']}/refunds",
        json={"amount_fen": 5_000, "reason": "油品质量投诉"},
        headers=staff_headers(fc.runtime, manager),
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "succeeded"
    wallet = (await fc.get("/api/v1/wallet")).json()
    assert (wallet["principal_fen"], wallet["bonus_fen"]) == (35_720, 0)  # principal first

    too_much = await fc.http.post(
        f"/api/v1/admin/orders/{order['id']}/refunds",
        json={"amount_fen": 18_281, "reason": "多退"},
        headers=staff_headers(fc.runtime, manager),
    )
    assert (too_much.status_code, too_much.json()["code"]) == (422, "refund_exceeds_paid")

    withdrawn = await fc.post("/api/v1/wallet/withdrawals", key="w1")
    assert withdrawn.status_code == 201, withdrawn.text
    assert withdrawn.json()["principal_fen"] == 35_720
    await fc.refunds_settled()
    wallet = (await fc.get("/api/v1/wallet")).json()
    assert wallet["balance_fen"] == 0
    async with fc.runtime.db.read_only() as session:
        entries = list(
            await session.scalars(
                select(WalletEntry)
                .where(WalletEntry.member_id == fc.member.id)
                .order_by(WalletEntry.id)
            )
        )
        session.expunge_all()
    assert [(e.kind, e.principal_fen, e.bonus_fen) for e in entries] == [
        ("topup", 50_000, 4_000),
        ("pay", -19_280, -4_000),
        ("refund", 5_000, 0),
        ("withdraw", -35_720, 0),
    ]
    assert sum(e.principal_fen for e in entries) == entries[-1].principal_after_fen == 0
    withdrawal = [r for r in await _refunds(fc, topup.json()["id"]) if r.kind == "withdrawal"]
    assert [(r.status, r.amount_fen) for r in withdrawal] == [("succeeded", 35_720)]


async def test_large_refund_needs_another_manager(forecourt: Forecourt) -> None:
    fc = forecourt
    fc.runtime.settings.refund_approval_fen = 10_000
    await fc.sale(seq=1, nozzle=1, volume_ml=30_000)
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
        )
    ).json()
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()
    attendant = await make_staff(fc.runtime, role="attendant", station_ids=[fc.station_id])
    manager = await make_staff(fc.runtime, role="station_manager", station_ids=[fc.station_id])
    elsewhere = await insert_station(fc.runtime, code="OTHER-1")
    outsider = await make_staff(fc.runtime, role="station_manager", station_ids=[elsewhere])
    asked = await fc.http.post(
        f"/api/v1/admin/orders/{order['id']}/refunds",
        json={"amount_fen": 23_280, "reason": "司机加错油号"},
        headers=staff_headers(fc.runtime, attendant),
    )
    assert asked.status_code == 201, asked.text
    refund = asked.json()
    assert refund["status"] == "pending_approval"
    hidden = await fc.http.post(
        f"/api/v1/admin/refunds/{refund['id']}/decision",
        json={"approve": True},
        headers=staff_headers(fc.runtime, outsider),
    )
    assert hidden.status_code == 404
    ok = await fc.http.post(
        f"/api/v1/admin/refunds/{refund['id']}/decision",
        json={"approve": True},
        headers=staff_headers(fc.runtime, manager),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["approved_by"] == f"staff:{manager.id}"
    await fc.wechat.join()

    async def refunded() -> dict[str, object] | None:
        body = await _order(fc, order["id"])
        return body if body["status"] == "refunded" else None

    body = await eventually(refunded, what="order refunded")
    assert body["refunded_fen"] == 23_280
