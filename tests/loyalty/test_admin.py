"""Back office: audited adjustments, member look-up, tier configuration, who may call what."""

from __future__ import annotations

import httpx

from forecourt.runtime import Runtime
from tests.fixtures.auth import (
    insert_station,
    make_member,
    make_staff,
    member_headers,
    next_phone,
    staff_headers,
)
from tests.loyalty.conftest import check_ledger, entries, give_points


async def test_adjustments_are_audited_and_need_a_reason(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    member = await make_member(runtime, phone=next_phone())
    hq = await make_staff(runtime, role="hq_admin")
    headers = staff_headers(runtime, hq)
    path = f"/api/v1/admin/loyalty/members/{member.id}/adjustments"

    made = await client.post(
        path,
        json={"points": 500, "reason": "补录线下加油积分"},
        headers=headers | {"Idempotency-Key": "a1"},
    )
    assert made.status_code == 201, made.text
    replay = await client.post(
        path,
        json={"points": 500, "reason": "补录线下加油积分"},
        headers=headers | {"Idempotency-Key": "a1"},
    )
    assert replay.json() == made.json()
    entry = made.json()
    assert (
        entry["kind"],
        entry["points"],
        entry["balance_after"],
        entry["actor"],
        entry["reason"],
    ) == (
        "adjust",
        500,
        500,
        f"staff:{hq.id}",
        "补录线下加油积分",
    )
    no_reason = await client.post(path, json={"points": 5}, headers=headers)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "body.reason"
    blank = await client.post(path, json={"points": 5, "reason": "  "}, headers=headers)
    assert blank.status_code == 422
    zero = await client.post(path, json={"points": 0, "reason": "测试"}, headers=headers)
    assert zero.status_code == 422
    overdraw = await client.post(path, json={"points": -501, "reason": "扣回"}, headers=headers)
    assert (overdraw.status_code, overdraw.json()["code"]) == (409, "insufficient_points")
    assert len(await entries(runtime, member.id)) == 1
    assert (await check_ledger(runtime, member.id)).points_balance == 500

    looked = await client.get(f"/api/v1/admin/loyalty/members/{member.id}", headers=headers)
    body = looked.json()
    assert (body["phone_masked"], body["card"]["points_balance"], body["card"]["tier"]["code"]) == (
        member.phone_masked,
        500,
        "standard",
    )
    assert "phone" not in body
    ledger = await client.get(f"/api/v1/admin/loyalty/members/{member.id}/entries", headers=headers)
    assert [e["actor"] for e in ledger.json()] == [f"staff:{hq.id}"]
    unknown = await client.get("/api/v1/admin/loyalty/members/999999", headers=headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "member_not_found")


async def test_only_head_office_adjusts_and_drivers_see_only_their_own(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    member = await make_member(runtime)
    other = await make_member(runtime)
    manager = await make_staff(
        runtime, role="station_manager", station_ids=[await insert_station(runtime)]
    )
    path = f"/api/v1/admin/loyalty/members/{member.id}/adjustments"
    denied = await client.post(
        path, json={"points": 5, "reason": "测试"}, headers=staff_headers(runtime, manager)
    )
    assert denied.status_code == 403
    as_driver = await client.post(
        path, json={"points": 5, "reason": "测试"}, headers=member_headers(runtime, member.id)
    )
    assert as_driver.status_code == 403
    card = await client.get("/api/v1/loyalty/card", headers=member_headers(runtime, other.id))
    assert (card.json()["member_id"], card.json()["points_balance"]) == (other.id, 0)
    assert (await client.get("/api/v1/loyalty/card")).status_code == 401


async def test_tier_configuration(runtime: Runtime, client: httpx.AsyncClient) -> None:
    hq = staff_headers(runtime, await make_staff(runtime, role="hq_admin"))
    tiers = (await client.get("/api/v1/admin/loyalty/tiers", headers=hq)).json()
    assert [t["code"] for t in tiers] == ["standard", "silver", "gold", "diamond"]
    tiers[1] |= {"per_litre_fen": 15, "min_growth": 150}
    for tier in tiers:
        del tier["discount_label"]
    saved = await client.put("/api/v1/admin/loyalty/tiers", json={"tiers": tiers}, headers=hq)
    assert saved.status_code == 200, saved.text
    public = (await client.get("/api/v1/loyalty/tiers")).json()
    assert (public[1]["per_litre_fen"], public[1]["discount_label"]) == (15, "银卡 每升优惠¥0.15")
    assert public[2]["discount_label"] == "金卡 每升优惠¥0.20（95# ¥0.25/L，98# ¥0.30/L）"
    bad = [tiers[1] | {"rank": 0, "min_growth": 10}]
    refused = await client.put("/api/v1/admin/loyalty/tiers", json={"tiers": bad}, headers=hq)
    assert (refused.status_code, refused.json()["code"]) == (422, "bad_tier_config")


async def test_shares_count_up_to_the_daily_cap(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    member = await make_member(runtime)
    me = member_headers(runtime, member.id)
    counted = []
    for _ in range(5):
        resp = await client.post(
            "/api/v1/loyalty/shares", json={"channel": "wechat_friend"}, headers=me
        )
        assert resp.status_code == 201
        counted.append(resp.json()["counted"])
    assert counted == [True, True, True, False, False]
    card = (await client.get("/api/v1/loyalty/card", headers=me)).json()
    assert (card["growth"], card["next_tier"]["code"], card["growth_to_next"]) == (
        15,
        "silver",
        185,
    )


async def test_head_office_can_queue_a_retier_run(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    hq = staff_headers(runtime, await make_staff(runtime, role="hq_admin"))
    member = await make_member(runtime)
    await give_points(runtime, member.id, 1)  # an account at the entry tier
    await runtime.tasks.start(dispatcher=False, scheduler=False)
    try:
        resp = await client.post("/api/v1/admin/loyalty/retier", headers=hq)
        assert (resp.status_code, resp.json()) == (202, {"queued": "loyalty.retier"})
        await runtime.tasks.drain(grace=10)
    finally:
        await runtime.tasks.stop()
    attendant = await make_staff(
        runtime, role="attendant", station_ids=[await insert_station(runtime)]
    )
    denied = await client.post(
        "/api/v1/admin/loyalty/retier", headers=staff_headers(runtime, attendant)
    )
    assert denied.status_code == 403
