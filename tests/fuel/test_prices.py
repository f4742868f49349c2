"""Grades, caps and scheduled list prices."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from forecourt.kit import clock
from forecourt.runtime import Runtime
from tests.fixtures.factories import add_grades, make_staff_token, make_station


@pytest.fixture
async def station_ids(runtime: Runtime) -> tuple[int, int]:
    async with runtime.db.unit_of_work() as session:
        await add_grades(session)
        a = await make_station(session)
        b = await make_station(session, province="贵州省", city="贵阳市")
        return a.id, b.id


async def _history(
    client: httpx.AsyncClient, headers: dict[str, str], sid: int
) -> list[dict[str, object]]:
    resp = await client.get(f"/api/v1/admin/stations/{sid}/prices/history", headers=headers)
    assert resp.status_code == 200
    rows: list[dict[str, object]] = resp.json()
    return rows


async def test_price_now_becomes_current(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    a, _ = station_ids
    hq = await make_staff_token(runtime, role="hq_admin")
    resp = await client.post(
        f"/api/v1/admin/stations/{a}/prices", json={"grade": "95", "price_fen": 845}, headers=hq
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["state"] == "current"
    assert resp.json()["price_yuan"] == "8.45"
    prices = (await client.get(f"/api/v1/stations/{a}/prices")).json()
    assert [(p["grade"], p["price_fen"]) for p in prices["current"]] == [("95", 845)]


async def test_price_above_cap_is_refused_and_not_written(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    a, _ = station_ids
    hq = await make_staff_token(runtime, role="hq_admin")
    resp = await client.post(
        f"/api/v1/admin/stations/{a}/prices", json={"grade": "95", "price_fen": 846}, headers=hq
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "price_above_cap"
    assert body["errors"] == [
        {"field": "body.price_fen", "reason": "8.46 is above the 云南省 cap of 8.45"}
    ]
    assert await _history(client, hq, a) == []


async def test_missing_cap_unknown_grade_and_past_moment(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    _, b = station_ids
    hq = await make_staff_token(runtime, role="hq_admin")
    url = f"/api/v1/admin/stations/{b}/prices"
    no_cap = await client.post(url, json={"grade": "92", "price_fen": 700}, headers=hq)
    assert no_cap.status_code == 422
    assert no_cap.json()["code"] == "price_cap_missing"
    unknown = await client.post(url, json={"grade": "89", "price_fen": 700}, headers=hq)
    assert unknown.json()["code"] == "unknown_grade"
    assert unknown.json()["errors"] == [{"field": "body.grade", "reason": "unknown grade"}]
    past = (clock.now() - timedelta(hours=1)).isoformat()
    late = await client.post(
        url, json={"grade": "92", "price_fen": 700, "effective_at": past}, headers=hq
    )
    assert late.status_code == 422
    assert late.json()["errors"] == [
        {"field": "body.effective_at", "reason": "must not be in the past"}
    ]
    naive = await client.post(
        url,
        json={"grade": "92", "price_fen": 700, "effective_at": "2030-01-01T00:00:00"},
        headers=hq,
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "body.effective_at"
    zero = await client.post(url, json={"grade": "92", "price_fen": 0}, headers=hq)
    assert zero.json()["errors"][0]["field"] == "body.price_fen"


async def test_midnight_change_takes_effect_at_2400(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    a, _ = station_ids
    hq = await make_staff_token(runtime, role="hq_admin")
    url = f"/api/v1/admin/stations/{a}/prices"
    assert (
        await client.post(url, json={"grade": "92", "price_fen": 780}, headers=hq)
    ).status_code == 201
    later = await client.post(
        url, json={"grade": "92", "price_fen": 760, "at_midnight": True}, headers=hq
    )
    assert later.status_code == 201
    assert later.json()["state"] == "scheduled"
    local = clock.local(clock.now())
    effective = clock.local(clock.next_local_midnight(clock.now()))
    assert (effective.hour, effective.minute) == (0, 0)
    assert effective.date() == local.date() + timedelta(days=1)
    prices = (await client.get(f"/api/v1/stations/{a}/prices")).json()
    assert [p["price_fen"] for p in prices["current"]] == [780]
    assert [p["price_fen"] for p in prices["scheduled"]] == [760]
    clock.travel(timedelta(days=1))
    prices = (await client.get(f"/api/v1/stations/{a}/prices")).json()
    assert [p["price_fen"] for p in prices["current"]] == [760]
    assert prices["scheduled"] == []
    expired = await client.get(f"/api/v1/admin/stations/{a}/prices/history", headers=hq)
    assert expired.status_code == 401
    hq = await make_staff_token(runtime, role="hq_admin")
    states = [(r["price_fen"], r["state"]) for r in await _history(client, hq, a)]
    assert states == [(760, "current"), (780, "superseded")]


async def test_cap_in_force_at_effective_time_applies(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    a, _ = station_ids
    hq = await make_staff_token(runtime, role="hq_admin")
    tomorrow = clock.now() + timedelta(days=1)
    cap = await client.post(
        "/api/v1/admin/price-caps",
        json={
            "province": "云南省",
            "grade": "92",
            "cap_fen": 750,
            "effective_at": tomorrow.isoformat(),
        },
        headers=hq,
    )
    assert cap.status_code == 201
    url = f"/api/v1/admin/stations/{a}/prices"
    now_ok = await client.post(url, json={"grade": "92", "price_fen": 780}, headers=hq)
    assert now_ok.status_code == 201
    later = (tomorrow + timedelta(hours=1)).isoformat()
    refused = await client.post(
        url, json={"grade": "92", "price_fen": 780, "effective_at": later}, headers=hq
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "price_above_cap"


async def test_cancel_scheduled_but_not_effective(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    a, _ = station_ids
    hq = await make_staff_token(runtime, role="hq_admin")
    url = f"/api/v1/admin/stations/{a}/prices"
    now_price = (await client.post(url, json={"grade": "95", "price_fen": 830}, headers=hq)).json()
    planned = (
        await client.post(
            url, json={"grade": "95", "price_fen": 820, "at_midnight": True}, headers=hq
        )
    ).json()
    cancelled = await client.delete(f"{url}/{planned['id']}", headers=hq)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = await client.delete(f"{url}/{planned['id']}", headers=hq)
    assert again.json()["state"] == "cancelled"
    refused = await client.delete(f"{url}/{now_price['id']}", headers=hq)
    assert refused.status_code == 409
    assert refused.json()["code"] == "price_already_effective"
    clock.travel(timedelta(days=1))
    prices = (await client.get(f"/api/v1/stations/{a}/prices")).json()
    assert [p["price_fen"] for p in prices["current"]] == [830]


async def test_manager_of_a_gets_404_for_b(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    a, b = station_ids
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(a,))
    ok = await client.post(
        f"/api/v1/admin/stations/{a}/prices",
        json={"grade": "95", "price_fen": 830},
        headers=manager,
    )
    assert ok.status_code == 201
    price_id = ok.json()["id"]
    for method, url, body in [
        ("POST", f"/api/v1/admin/stations/{b}/prices", {"grade": "95", "price_fen": 830}),
        ("GET", f"/api/v1/admin/stations/{b}/prices/history", None),
        ("DELETE", f"/api/v1/admin/stations/{b}/prices/{price_id}", None),
    ]:
        resp = await client.request(method, url, json=body, headers=manager)
        assert resp.status_code == 404, (method, url)
    attendant = await make_staff_token(runtime, role="attendant", station_ids=(a,))
    denied = await client.post(
        f"/api/v1/admin/stations/{a}/prices",
        json={"grade": "95", "price_fen": 830},
        headers=attendant,
    )
    assert denied.status_code == 403


async def test_grades_are_head_office_config(
    client: httpx.AsyncClient, runtime: Runtime, station_ids: tuple[int, int]
) -> None:
    hq = await make_staff_token(runtime, role="hq_admin")
    manager = await make_staff_token(runtime, role="station_manager")
    new = {"code": "101", "name": "101#汽油", "kind": "petrol", "sort_order": 35}
    assert (await client.post("/api/v1/admin/grades", json=new, headers=manager)).status_code == 403
    assert (await client.post("/api/v1/admin/grades", json=new, headers=hq)).status_code == 201
    assert (await client.post("/api/v1/admin/grades", json=new, headers=hq)).status_code == 409
    codes = [g["code"] for g in (await client.get("/api/v1/grades")).json()]
    assert codes == ["92", "95", "98", "101", "0", "-10"]
    off = await client.patch("/api/v1/admin/grades/101", json={"active": False}, headers=hq)
    assert off.json()["active"] is False
    assert "101" not in [g["code"] for g in (await client.get("/api/v1/grades")).json()]
