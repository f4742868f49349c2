"""Station CRUD: validation, coordinates and role scoping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from forecourt.runtime import Runtime
from forecourt.station.models import Station
from tests.fixtures.factories import (
    add_grades,
    make_price,
    make_staff_token,
    make_station,
    member_headers,
)

NEW: dict[str, Any] = {
    "code": "KM900",
    "name": "中国石化测试站",
    "brand": "中国石化",
    "address": "昆明市五华区测试路1号",
    "province": "云南省",
    "city": "昆明市",
    "lat": 25.041,
    "lng": 102.712,
    "coord": "gcj02",
    "phone": "0871-60000001",
    "hours": {"open_24h": False, "opens_at": "06:00", "closes_at": "22:00"},
    "services": ["shop", "toilet"],
}


async def _two_stations(runtime: Runtime) -> tuple[int, int]:
    async with runtime.db.unit_of_work() as session:
        await add_grades(session)
        a = await make_station(session, name="A站")
        b = await make_station(session, name="B站", lat=25.1)
        await make_price(session, station=a, grade="95", price_fen=830)
        return a.id, b.id


async def _count(runtime: Runtime) -> int:
    async with runtime.db.read_only() as session:
        return int(await session.scalar(select(func.count(Station.id))) or 0)


async def test_hq_creates_station_and_coordinates_round_trip(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    hq = await make_staff_token(runtime, role="hq_admin")
    resp = await client.post("/api/v1/admin/stations", json=NEW, headers=hq)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["coord"] == "gcj02"
    assert body["lat"] == pytest.approx(25.041, abs=1e-6)
    assert body["lng"] == pytest.approx(102.712, abs=1e-6)
    assert body["opens_at"] == "06:00"
    async with runtime.db.read_only() as session:
        stored = await session.get(Station, body["id"])
        assert stored is not None
        stored_lat = stored.lat
    # stored in WGS-84: the GCJ-02 offset around Kunming is a few hundred metres
    assert stored_lat != pytest.approx(25.041, abs=1e-4)
    wgs = await client.get(f"/api/v1/stations/{body['id']}", params={"coord": "wgs84"})
    assert wgs.json()["lat"] == pytest.approx(stored_lat, abs=1e-7)


async def test_duplicate_code_conflicts_and_writes_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    hq = await make_staff_token(runtime, role="hq_admin")
    assert (await client.post("/api/v1/admin/stations", json=NEW, headers=hq)).status_code == 201
    resp = await client.post("/api/v1/admin/stations", json=NEW, headers=hq)
    assert resp.status_code == 409
    assert resp.json()["errors"] == [
        {"field": "body.code", "reason": "already used by another station"}
    ]
    assert await _count(runtime) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lat": 91}, "body.lat"),
        ({"lng": -181}, "body.lng"),
        ({"coord": "mars"}, "body.coord"),
        ({"colour": "red"}, "body.colour"),
        (
            {"hours": {"open_24h": False, "opens_at": "25:00", "closes_at": "22:00"}},
            "body.hours.opens_at",
        ),
        ({"hours": {"open_24h": False}}, "body.hours"),
        ({"services": ["spa"]}, "body.services.0"),
        ({"code": ""}, "body.code"),
    ],
)
async def test_bad_station_input_names_the_field(
    client: httpx.AsyncClient, runtime: Runtime, change: dict[str, Any], field: str
) -> None:
    hq = await make_staff_token(runtime, role="hq_admin")
    resp = await client.post("/api/v1/admin/stations", json={**NEW, **change}, headers=hq)
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "validation_error"
    assert field in [e["field"] for e in body["errors"]]
    assert await _count(runtime) == 0


async def test_malformed_json_is_422(client: httpx.AsyncClient, runtime: Runtime) -> None:
    hq = await make_staff_token(runtime, role="hq_admin")
    resp = await client.post(
        "/api/v1/admin/stations",
        content=b'{"code": "X",',
        headers={**hq, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.json()["code"] == "malformed_json"


@pytest.mark.parametrize(("role", "status"), [("station_manager", 403), ("attendant", 403)])
async def test_only_head_office_creates(
    client: httpx.AsyncClient, runtime: Runtime, role: str, status: int
) -> None:
    headers = await make_staff_token(runtime, role=role)
    resp = await client.post("/api/v1/admin/stations", json=NEW, headers=headers)
    assert resp.status_code == status
    assert resp.json()["code"] == "forbidden"


async def test_drivers_and_anonymous_cannot_create(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    driver = await client.post("/api/v1/admin/stations", json=NEW, headers=member_headers(runtime))
    assert driver.status_code == 403
    anonymous = await client.post("/api/v1/admin/stations", json=NEW)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"


async def test_manager_is_scoped_to_own_station(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    a, b = await _two_stations(runtime)
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(a,))
    listed = await client.get("/api/v1/admin/stations", headers=manager)
    assert [s["id"] for s in listed.json()["items"]] == [a]
    assert listed.json()["total"] == 1
    assert (await client.get(f"/api/v1/admin/stations/{b}", headers=manager)).status_code == 404
    other = await client.patch(f"/api/v1/admin/stations/{b}", json={"phone": "1"}, headers=manager)
    assert other.status_code == 404
    own = await client.patch(
        f"/api/v1/admin/stations/{a}",
        json={"hours": {"open_24h": True}, "status": "paused"},
        headers=manager,
    )
    assert own.status_code == 200
    assert own.json()["open_24h"] is True
    assert own.json()["status"] == "paused"
    renamed = await client.patch(f"/api/v1/admin/stations/{a}", json={"name": "X"}, headers=manager)
    assert renamed.status_code == 403
    assert renamed.json()["errors"] == [{"field": "body.name", "reason": "head office only"}]
    gone = await client.delete(f"/api/v1/admin/stations/{a}", headers=manager)
    assert gone.status_code == 403


async def test_hq_sees_all_and_deletes(client: httpx.AsyncClient, runtime: Runtime) -> None:
    a, b = await _two_stations(runtime)
    hq = await make_staff_token(runtime, role="hq_admin")
    listed = await client.get("/api/v1/admin/stations", headers=hq)
    assert [s["id"] for s in listed.json()["items"]] == [a, b]
    assert (await client.delete(f"/api/v1/admin/stations/{b}", headers=hq)).status_code == 204
    assert (await client.get(f"/api/v1/stations/{b}")).status_code == 404
    assert (await client.delete(f"/api/v1/admin/stations/{b}", headers=hq)).status_code == 404


async def test_public_station_shows_current_prices(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    a, _ = await _two_stations(runtime)
    resp = await client.get(f"/api/v1/stations/{a}")
    assert resp.status_code == 200
    prices = resp.json()["prices"]
    assert [(p["grade"], p["price_fen"], p["price_yuan"]) for p in prices] == [("95", 830, "8.30")]
    assert resp.json()["open_now"] is True


async def test_public_list_hides_inactive(client: httpx.AsyncClient, runtime: Runtime) -> None:
    async with runtime.db.unit_of_work() as session:
        await make_station(session, name="开")
        await make_station(session, name="关", status="closed")
    resp = await client.get("/api/v1/stations", params={"city": "昆明市"})
    assert [s["name"] for s in resp.json()["items"]] == ["开"]
