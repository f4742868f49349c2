"""Reconciliation against the WeChat Pay sandbox's trade bill."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from forecourt.kit import clock
from forecourt.payment import reconcile
from forecourt.payment.providers import BillRow
from tests.fixtures.auth import make_staff, staff_headers
from tests.payment.conftest import Forecourt


async def _paid_order(fc: Forecourt, seq: int) -> tuple[str, str]:
    await fc.sale(seq=seq, nozzle=1, volume_ml=10_000 * seq)
    order = (
        await fc.post(
            "/api/v1/orders",
            {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1, "sale_seq": seq},
        )
    ).json()
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()
    return order["id"], payment["id"]


async def test_daily_reconciliation_balanced_then_a_lost_payment(forecourt: Forecourt) -> None:
    fc = forecourt
    hq = await make_staff(fc.runtime, role="hq_admin", station_ids=[])
    headers = staff_headers(fc.runtime, hq)
    order_1, _ = await _paid_order(fc, 1)  # 77.60
    await _paid_order(fc, 2)  # 155.20
    refund = await fc.http.post(
        f"/api/v1/admin/orders/{order_1}/refunds",
        json={"amount_fen": 1_000, "reason": "少加了"},
        headers=headers,
    )
    assert refund.status_code == 201, refund.text
    await fc.refunds_settled()
    # A third payment the provider confirms while our callback endpoint is unreachable.
    await fc.sale(seq=3, nozzle=1, volume_ml=5_000)
    order_3 = (
        await fc.post(
            "/api/v1/orders",
            {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1, "sale_seq": 3},
        )
    ).json()
    pay_3 = (
        await fc.post(f"/api/v1/orders/{order_3['id']}/payments", {"provider": "wechatpay"})
    ).json()
    fc.runtime.gateways.route_notifications(httpx.MockTransport(lambda _: httpx.Response(503)))
    await fc.wechat.complete(pay_3["id"])
    await asyncio.sleep(0.05)
    await fc.wechat.aclose()

    today = clock.local(clock.now()).date()
    clock.travel(timedelta(days=1))
    headers = staff_headers(fc.runtime, hq)  # a fresh token the next day
    resp = await fc.http.post(
        "/api/v1/admin/reconciliations",
        json={"provider": "wechatpay", "bill_date": today.isoformat()},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["status"] == "discrepancies"
    assert result["bill_rows"] == 4  # three payments, one refund
    assert result["matched"] == 3
    assert result["bill_total_fen"] == 7_760 + 15_520 + 3_880 - 1_000
    assert result["our_total_fen"] == 7_760 + 15_520 - 1_000
    assert [(i["problem"], i["kind"], i["number"], i["bill_fen"]) for i in result["items"]] == [
        ("missing_ours", "payment", pay_3["id"], 3_880)
    ]
    listed = await fc.http.get("/api/v1/admin/reconciliations", headers=headers)
    assert [r["bill_date"] for r in listed.json()] == [today.isoformat()]
    manager = await make_staff(fc.runtime, role="station_manager", station_ids=[fc.station_id])
    denied = await fc.http.get(
        "/api/v1/admin/reconciliations", headers=staff_headers(fc.runtime, manager)
    )
    assert denied.status_code == 403


def test_match_reports_each_kind_of_difference() -> None:
    now = clock.now()
    bill = [
        BillRow("payment", "P1", "T1", 100, now),
        BillRow("payment", "P2", "T2", 200, now),
        BillRow("refund", "P1", "T1", 50, now, out_refund_no="R1", refund_id="RF1"),
    ]
    ours = {
        ("payment", "P1"): (100, "T1"),
        ("payment", "P2"): (250, "T2"),
        ("payment", "P9"): (9, "T9"),
    }
    assert reconcile.match(bill, ours) == [
        {
            "problem": "amount_mismatch",
            "kind": "payment",
            "number": "P2",
            "bill_fen": 200,
            "our_fen": 250,
            "transaction_id": None,
        },
        {
            "problem": "missing_ours",
            "kind": "refund",
            "number": "R1",
            "bill_fen": 50,
            "our_fen": None,
            "transaction_id": "T1",
        },
        {
            "problem": "missing_theirs",
            "kind": "payment",
            "number": "P9",
            "bill_fen": None,
            "our_fen": 9,
            "transaction_id": "T9",
        },
    ]
