"""Which orders may be invoiced: several at once, 409s, 422s, idempotency, no double issue."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from forecourt.invoice.models import Invoice, InvoiceClaim
from forecourt.kit import clock
from tests.fixtures.auth import (
    insert_station,
    make_member,
    make_staff,
    member_headers,
    staff_headers,
)
from tests.invoice.conftest import World


async def test_several_orders_of_one_seller_make_one_invoice(world: World) -> None:
    other_station = await insert_station(world.runtime)
    ids = [
        await world.order(grade="92", volume_ml=30_000),  # 232.80
        await world.order(grade="95", volume_ml=25_773, discount_fen=1_000),  # 214.43 - 10.00
        await world.order(grade="0", volume_ml=1, station_id=other_station),  # 0.01 for 1 ml
    ]
    made = await world.request(ids)
    assert made.status_code == 201, made.text
    body = made.json()
    lines = {line["order_id"]: line for line in body["lines"]}
    assert [lines[i]["goods_name"] for i in ids] == [
        "*汽油*92号车用汽油",
        "*汽油*95号车用汽油",
        "*柴油*0号车用柴油",
    ]
    assert [lines[i]["amount_fen"] for i in ids] == [23_280, 20_443, 1]
    assert [lines[i]["tax_fen"] for i in ids] == [2_678, 2_352, 0]
    assert [lines[i]["quantity"] for i in ids] == ["30.000", "25.773", "0.001"]
    assert lines[ids[1]]["unit_price"] == "7.93194428"  # 204.43 / 25.773 L
    assert (body["total_fen"], body["net_fen"], body["tax_fen"]) == (43_724, 38_694, 5_030)
    assert body["volume_ml"] == 55_774
    issued = await world.final(body["id"])
    assert issued["status"] == "issued"
    _, sent = world.sandbox.requests[0]
    details = sent["order"]["invoiceDetail"]
    assert [d["taxIncludedAmount"] for d in details] == [
        f"{lines[i]['amount_fen'] / 100:.2f}" for i in sorted(ids)
    ]
    assert {d["num"] for d in details} == {"30.000", "25.773", "0.001"}


async def test_unpaid_refunded_topup_and_invoiced_orders_are_refused(world: World) -> None:
    pending = await world.order(status="pending")
    fuelling = await world.order(kind="prepay", status="fuelling")
    refunded = await world.order(status="refunded", refunded_fen=23_280)
    topup = await world.order(kind="topup")
    old = await world.order(completed_at=clock.now() - timedelta(days=181))
    cases = [
        (pending, 409, "order_not_paid"),
        (fuelling, 409, "order_not_paid"),
        (refunded, 409, "order_refunded"),
        (topup, 409, "order_not_invoiceable"),
        (old, 409, "invoice_period_over"),
        ("NOSUCHORDER", 404, "order_not_found"),
    ]
    for order_id, code, problem in cases:
        resp = await world.request([order_id])
        assert (resp.status_code, resp.json()["code"]) == (code, problem), order_id
    assert "prepayment" in (await world.request([topup])).json()["detail"]
    good = await world.order()
    assert (await world.request([good])).status_code == 201
    again = await world.request([good])
    assert (again.status_code, again.json()["code"]) == (409, "order_already_invoiced")
    both = await world.request([await world.order(), good])
    assert (both.status_code, both.json()["code"]) == (409, "order_already_invoiced")
    assert len(await world.invoices()) == 1


async def test_another_drivers_order_is_not_found(world: World) -> None:
    other = await make_member(world.runtime)
    theirs = await world.order(member_id=other.id)
    resp = await world.request([theirs])
    assert (resp.status_code, resp.json()["code"]) == (404, "order_not_found")


async def test_bad_input_names_the_field(world: World) -> None:
    order_id = await world.order()
    bad_tax = await world.request(
        [order_id], title={"kind": "company", "name": "某公司", "tax_id": "91440300708461136U"}
    )
    assert bad_tax.status_code == 422
    problem = bad_tax.json()
    assert problem["code"] == "invalid_tax_id"
    assert "check_character" in problem["detail"]
    assert problem["errors"] == [
        {
            "field": "title.tax_id",
            "reason": "check_character: check character is 'U', GB 32100-2015 gives 'T'",
        }
    ]
    short = await world.request(
        [order_id], title={"kind": "company", "name": "某公司", "tax_id": "9144"}
    )
    assert short.json()["errors"][0]["reason"] == "length: must be 18 characters, got 4"
    duplicate = await world.request([order_id, order_id])
    assert (duplicate.status_code, duplicate.json()["errors"][0]["field"]) == (422, "order_ids")
    neither = await world.post("/api/v1/invoices", {"order_ids": [order_id]})
    assert (neither.status_code, neither.json()["errors"][0]["field"]) == (422, "title_id")
    mail = await world.request([order_id], email="not-an-address")
    assert (mail.status_code, mail.json()["code"]) == (422, "invalid_email")
    assert await world.invoices() == []


async def test_idempotency_key_replays_the_request(world: World) -> None:
    order_id = await world.order()
    body = {
        "order_ids": [order_id],
        "title": {"kind": "personal", "name": "李雷"},
    }
    first = await world.post("/api/v1/invoices", body, key="inv-1")
    again = await world.post("/api/v1/invoices", body, key="inv-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await world.post("/api/v1/invoices", {**body, "email": "a@b.cn"}, key="inv-1")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert len(await world.invoices()) == 1


async def test_concurrent_requests_issue_once(world: World) -> None:
    order_id = await world.order()
    answers = await asyncio.gather(*(world.request([order_id]) for _ in range(5)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409, 409, 409, 409]
    [created] = [a.json() for a in answers if a.status_code == 201]
    await world.final(created["id"])
    async with world.runtime.db.read_only() as session:
        invoices = await session.scalar(select(func.count()).select_from(Invoice))
        claims = await session.scalar(select(func.count()).select_from(InvoiceClaim))
    assert (invoices, claims) == (1, 1)
    assert len(world.sandbox.invoices) == 1


async def test_mixed_sellers_and_quota(world: World) -> None:
    admin = await make_staff(world.runtime, role="hq_admin")
    h = staff_headers(world.runtime, admin)
    second = await insert_station(world.runtime)
    put = await world.http.put(
        "/api/v1/admin/invoice-sellers/91530100MA6K0FC02N",
        json={"name": "第二能源公司", "quota_litres": 10},
        headers=h,
    )
    assert put.status_code == 200, put.text
    assign = await world.http.put(
        f"/api/v1/admin/stations/{second}/invoice-seller",
        json={"seller_tax_id": "91530100MA6K0FC02N"},
        headers=h,
    )
    assert (assign.status_code, assign.json()["station_ids"]) == (200, [second])
    mixed = await world.request([await world.order(), await world.order(station_id=second)])
    assert (mixed.status_code, mixed.json()["code"]) == (422, "mixed_sellers")
    over = await world.request([await world.order(station_id=second, volume_ml=10_001)])
    assert (over.status_code, over.json()["code"]) == (409, "oil_quota_exhausted")
    fits = await world.request([await world.order(station_id=second, volume_ml=10_000)])
    assert fits.status_code == 201
    assert fits.json()["seller_tax_id"] == "91530100MA6K0FC02N"
    sellers = (await world.http.get("/api/v1/admin/invoice-sellers", headers=h)).json()
    assert {s["tax_id"]: s["quota_ml"] for s in sellers} == {
        "91530100MA6K0FC01K": 10_000_000,
        "91530100MA6K0FC02N": 0,
    }
    driver = await world.http.get("/api/v1/admin/invoice-sellers", headers=world.headers)
    assert driver.status_code == 403


async def test_provider_failure_frees_the_orders_for_another_request(world: World) -> None:
    order_id = await world.order()
    world.sandbox.fail_next("税务局系统繁忙")
    first = (await world.request([order_id])).json()
    failed = await world.final(first["id"])
    assert (failed["status"], failed["failure"]) == ("failed", "税务局系统繁忙")
    assert failed["pdf_url"] is None
    pdf = await world.get(f"/api/v1/invoices/{first['id']}/pdf")
    assert (pdf.status_code, pdf.json()["code"]) == (409, "invoice_not_issued")
    second = (await world.request([order_id])).json()
    assert (await world.final(second["id"]))["status"] == "issued"
    assert len(world.inbox.messages) == 0  # no e-mail given
    assert world.sandbox.quota_litres("91530100MA6K0FC01K") == 10_000 - 30


async def test_provider_refusal_fails_the_invoice_at_once(world: World) -> None:
    world.sandbox.set_quota("91530100MA6K0FC01K", 10)  # the platform knows less than we do
    made = (await world.request([await world.order()])).json()
    failed = await world.final(made["id"])
    assert failed["status"] == "failed"
    assert failed["failure"].startswith("E9206: 成品油库存不足")
    async with world.runtime.db.read_only() as session:
        claims = await session.scalar(select(func.count()).select_from(InvoiceClaim))
    assert claims == 0


async def test_staff_see_only_their_stations(world: World) -> None:
    other_station = await insert_station(world.runtime)
    made = (await world.request([await world.order()])).json()
    await world.final(made["id"])
    mine = await make_staff(world.runtime, role="attendant", station_ids=[world.station_id])
    theirs = await make_staff(world.runtime, role="station_manager", station_ids=[other_station])
    seen = await world.http.get(
        "/api/v1/admin/invoices", headers=staff_headers(world.runtime, mine)
    )
    assert [i["id"] for i in seen.json()] == [made["id"]]
    assert seen.json()[0]["member_id"] == world.member.id
    hidden = await world.http.get(
        "/api/v1/admin/invoices", headers=staff_headers(world.runtime, theirs)
    )
    assert hidden.json() == []
    one = await world.http.get(
        f"/api/v1/admin/invoices/{made['id']}", headers=staff_headers(world.runtime, theirs)
    )
    assert (one.status_code, one.json()["code"]) == (404, "invoice_not_found")
    pdf = await world.http.get(
        f"/api/v1/admin/invoices/{made['id']}/pdf", headers=staff_headers(world.runtime, mine)
    )
    assert (pdf.status_code, pdf.content[:5]) == (200, b"%PDF-")
    scoped = await world.http.get(
        f"/api/v1/admin/invoices?station_id={other_station}",
        headers=staff_headers(world.runtime, mine),
    )
    assert scoped.status_code == 404
    stranger = await make_member(world.runtime)
    other_driver = await world.get(
        f"/api/v1/invoices/{made['id']}", headers=member_headers(world.runtime, stranger.id)
    )
    assert (other_driver.status_code, other_driver.json()["code"]) == (404, "invoice_not_found")
    mine_list = (await world.get("/api/v1/invoices")).json()
    assert [i["id"] for i in mine_list["items"]] == [made["id"]]
