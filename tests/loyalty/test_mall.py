"""The points mall over HTTP: catalogue, redeem, 409s, cancel, pick-up at the right station."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from forecourt.loyalty.models import MallItem
from forecourt.loyalty.seed import MALL_ITEMS, seed_loyalty
from forecourt.runtime import Runtime
from tests.fixtures.auth import (
    insert_station,
    make_member,
    make_staff,
    member_headers,
    next_phone,
    staff_headers,
)
from tests.loyalty.conftest import check_ledger, give_points


async def _item(http: httpx.AsyncClient, sku: str) -> dict[str, object]:
    items = (await http.get("/api/v1/mall/items")).json()
    return next(i for i in items if i["sku"] == sku)


async def _set_stock(runtime: Runtime, sku: str, stock: int) -> None:
    async with runtime.db.unit_of_work() as session:
        await session.execute(update(MallItem).where(MallItem.sku == sku).values(stock=stock))


async def test_catalogue_has_twenty_everyday_items(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    assert await seed_loyalty(runtime.db) == len(MALL_ITEMS)
    assert await seed_loyalty(runtime.db) == 0  # safe to run again
    resp = await client.get("/api/v1/mall/items")
    assert resp.status_code == 200
    names = [i["name"] for i in resp.json()]
    assert len(names) >= 20
    for word in (
        "燃油宝",
        "玻璃水",
        "洗车券",
        "机油",
        "车载纸巾",
        "雨刮",
        "车蜡",
        "矿泉水",
        "咖啡券",
        "便利店",
    ):
        assert any(word in name for name in names), word
    tiers = (await client.get("/api/v1/loyalty/tiers")).json()
    assert [t["name"] for t in tiers] == ["普通", "银卡", "金卡", "钻石卡"]


async def test_redeem_cancel_and_pick_up(runtime: Runtime, client: httpx.AsyncClient) -> None:
    await seed_loyalty(runtime.db)
    station, other = await insert_station(runtime), await insert_station(runtime)
    member = await make_member(runtime, phone=next_phone())
    me = member_headers(runtime, member.id)
    await give_points(runtime, member.id, 1_000)
    water = await _item(client, "WASH-FLUID-01")  # 220 points, limit 4 a month
    body = {"item_id": water["id"], "quantity": 2, "station_id": station}

    made = await client.post(
        "/api/v1/mall/redemptions", json=body, headers=me | {"Idempotency-Key": "r-1"}
    )
    assert made.status_code == 201, made.text
    again = await client.post(
        "/api/v1/mall/redemptions", json=body, headers=me | {"Idempotency-Key": "r-1"}
    )
    assert again.json() == made.json()  # replayed, not redeemed twice
    redemption = made.json()
    assert (redemption["points"], redemption["status"]) == (440, "awaiting_pickup")
    assert len(redemption["pickup_code"]) == 8
    assert (await check_ledger(runtime, member.id)).points_balance == 560
    assert (await _item(client, "WASH-FLUID-01"))["stock"] == water["stock"] - 2  # type: ignore[operator]

    over = await client.post("/api/v1/mall/redemptions", json=body | {"quantity": 3}, headers=me)
    assert (over.status_code, over.json()["code"]) == (409, "redemption_limit_reached")
    oil = await _item(client, "OIL-5W30-01")
    poor = {"item_id": oil["id"], "quantity": 1, "station_id": station}
    broke = await client.post("/api/v1/mall/redemptions", json=poor, headers=me)
    assert (broke.status_code, broke.json()["code"]) == (409, "insufficient_points")
    await _set_stock(runtime, "COFFEE-01", 0)
    coffee = await _item(client, "COFFEE-01")
    gone = await client.post(
        "/api/v1/mall/redemptions",
        json={"item_id": coffee["id"], "quantity": 1, "station_id": station},
        headers=me,
    )
    assert (gone.status_code, gone.json()["code"]) == (409, "out_of_stock")
    assert (await check_ledger(runtime, member.id)).points_balance == 560  # nothing half-written

    attendant = await make_staff(runtime, role="attendant", station_ids=[station])
    stranger = await make_staff(runtime, role="attendant", station_ids=[other])
    code = redemption["pickup_code"]
    listed = await client.get(
        f"/api/v1/admin/stations/{station}/redemptions", headers=staff_headers(runtime, attendant)
    )
    assert [(r["id"], r["pickup_code"], r["member_phone"]) for r in listed.json()] == [
        (redemption["id"], None, member.phone_masked)
    ]
    elsewhere = await client.post(
        "/api/v1/admin/mall/pickups",
        json={"station_id": station, "code": code},
        headers=staff_headers(runtime, stranger),
    )
    assert elsewhere.status_code == 404
    picked = await client.post(
        "/api/v1/admin/mall/pickups",
        json={"station_id": station, "code": code},
        headers=staff_headers(runtime, attendant),
    )
    assert (picked.status_code, picked.json()["status"]) == (200, "picked_up")
    late = await client.post(f"/api/v1/mall/redemptions/{redemption['id']}/cancel", headers=me)
    assert (late.status_code, late.json()["code"]) == (409, "redemption_closed")

    second = await client.post("/api/v1/mall/redemptions", json=body | {"quantity": 1}, headers=me)
    assert second.status_code == 201
    cancelled = await client.post(
        f"/api/v1/mall/redemptions/{second.json()['id']}/cancel", headers=me
    )
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (await check_ledger(runtime, member.id)).points_balance == 560  # points came back
    assert (await _item(client, "WASH-FLUID-01"))["stock"] == water["stock"] - 2  # type: ignore[operator]
    someone = member_headers(runtime, (await make_member(runtime)).id)
    hidden = await client.get(f"/api/v1/mall/redemptions/{second.json()['id']}", headers=someone)
    assert hidden.status_code == 404
    mine = (await client.get("/api/v1/mall/redemptions", headers=me)).json()
    assert [r["status"] for r in mine] == ["cancelled", "picked_up"]


async def test_bad_input(runtime: Runtime, client: httpx.AsyncClient) -> None:
    await seed_loyalty(runtime.db)
    station = await insert_station(runtime)
    me = member_headers(runtime, (await make_member(runtime)).id)
    missing = await client.post(
        "/api/v1/mall/redemptions", json={"item_id": 999_999, "station_id": station}, headers=me
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "mall_item_not_found")
    zero = await client.post(
        "/api/v1/mall/redemptions",
        json={"item_id": 1, "quantity": 0, "station_id": station},
        headers=me,
    )
    assert zero.status_code == 422
    anonymous = await client.post(
        "/api/v1/mall/redemptions", json={"item_id": 1, "station_id": station}
    )
    assert anonymous.status_code == 401
