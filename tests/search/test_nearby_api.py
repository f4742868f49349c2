"""GET /stations/nearby and /geo/convert over HTTP, on the in-process index and on PostGIS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from coord_convert import transform as cc
from sqlalchemy import select, update

from forecourt.fuel.models import StationPrice
from forecourt.kit import clock
from forecourt.runtime import Runtime
from forecourt.search.schemas import NearbyPage
from forecourt.station.models import Station
from tests.fixtures.factories import add_grades, make_price, make_station
from tests.search.bruteforce import R

URL = "/api/v1/stations/nearby"
KUNMING: dict[str, Any] = {"lat": 25.04, "lng": 102.71, "coord": "gcj02"}


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    import math

    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    )
    return 2 * R * math.asin(math.sqrt(h))


def _origin_wgs84() -> tuple[float, float]:
    lng, lat = cc.gcj2wgs(KUNMING["lng"], KUNMING["lat"])
    return lat, lng


def _to_local(hour: int) -> None:
    """Move the clock forward to the next `hour`:00 in business time."""
    now = clock.local(clock.now())
    target = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    clock.travel(target - now)


@dataclass
class Town:
    """Stations around Kunming (WGS-84)."""

    a: int  # 24h, 95# 8.20 and 92# 7.60
    b: int  # 06:00-22:00, 95# 8.30
    c: int  # 92# only
    paused: int  # nearest of all but paused
    far: int  # 38 km away


async def _town(runtime: Runtime) -> Town:
    async with runtime.db.unit_of_work() as session:
        await add_grades(session)
        a = await make_station(session, name="A站", lat=25.0420, lng=102.7080)
        b = await make_station(
            session,
            name="B站",
            lat=25.0500,
            lng=102.7150,
            open_24h=False,
            opens_at="06:00",
            closes_at="22:00",
            services=["shop", "wash"],
        )
        c = await make_station(session, name="C站", lat=25.0300, lng=102.7000)
        paused = await make_station(
            session, name="停业站", lat=25.04298, lng=102.70857, status="paused"
        )
        far = await make_station(session, name="远站", lat=25.30, lng=102.95)
        await make_price(session, station=a, grade="95", price_fen=820)
        await make_price(session, station=a, grade="92", price_fen=760)
        await make_price(session, station=b, grade="95", price_fen=830)
        await make_price(session, station=c, grade="92", price_fen=750)
        await make_price(session, station=paused, grade="95", price_fen=700)
        await make_price(session, station=far, grade="95", price_fen=800)
        return Town(a=a.id, b=b.id, c=c.id, paused=paused.id, far=far.id)


async def _get(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    resp = await client.get(URL, params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body: dict[str, Any] = resp.json()
    assert NearbyPage.model_validate(body).model_dump(mode="json") == body  # the documented shape
    return body


async def test_kunming_example_sorted_with_prices_and_amap_links(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _to_local(12)
    town = await _town(runtime)
    body = await _get(client, **KUNMING, grade="95")
    origin = _origin_wgs84()
    expected = sorted(
        [(town.a, (25.0420, 102.7080)), (town.b, (25.0500, 102.7150))],
        key=lambda item: _metres(origin, item[1]),
    )
    assert [item["id"] for item in body["items"]] == [sid for sid, _ in expected]
    assert body["origin"] == {"lat": 25.04, "lng": 102.71, "coord": "gcj02"}
    assert body["radius_m"] == 10_000
    assert body["count"] == 2
    by_id = {item["id"]: item for item in body["items"]}
    a = by_id[town.a]
    assert a["distance_m"] == pytest.approx(_metres(origin, (25.0420, 102.7080)), abs=0.06)
    assert a["grade"] == "95"
    assert a["price_fen"] == 820
    assert a["price_yuan"] == "8.20"
    assert a["prices"] == [
        {"grade": "95", "name": "95#汽油", "price_fen": 820, "price_yuan": "8.20"}
    ]
    assert a["availability"] == "unknown"
    assert a["open_now"] is True
    assert a["open_24h"] is True
    assert a["name"] == "A站"
    assert a["phone"] == "0871-60000000"
    gcj_lng, gcj_lat = cc.wgs2gcj(102.7080, 25.0420)
    assert a["coord"] == "gcj02"
    assert a["lat"] == pytest.approx(gcj_lat, abs=1e-6)
    assert a["lng"] == pytest.approx(gcj_lng, abs=1e-6)
    amap = parse_qs(urlsplit(a["nav"]["amap_web"]).query)
    assert a["nav"]["amap_web"].startswith("https://uri.amap.com/navigation?")
    assert amap["to"] == [f"{gcj_lng:.6f},{gcj_lat:.6f},A站"]
    assert amap["coordinate"] == ["gaode"]
    assert amap["mode"] == ["car"]
    app = parse_qs(urlsplit(a["nav"]["amap_app"]).query)
    assert a["nav"]["amap_app"].startswith("amapuri://route/plan/?")
    assert app == {
        "dlat": [f"{gcj_lat:.6f}"],
        "dlon": [f"{gcj_lng:.6f}"],
        "dname": ["A站"],
        "dev": ["0"],
        "t": ["0"],
    }
    assert f"tocoord={gcj_lat:.6f},{gcj_lng:.6f}" in a["nav"]["tencent"]
    assert "coord_type=gcj02" in a["nav"]["baidu"]
    b = by_id[town.b]
    assert (b["price_fen"], b["price_yuan"], b["open_now"]) == (830, "8.30", True)
    assert (b["opens_at"], b["closes_at"], b["services"]) == ("06:00", "22:00", ["shop", "wash"])
    assert body["items"][0]["distance_m"] <= body["items"][1]["distance_m"]


async def test_without_grade_lists_every_current_price(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    town = await _town(runtime)
    body = await _get(client, **KUNMING)
    ids = [item["id"] for item in body["items"]]
    assert sorted(ids) == sorted([town.a, town.b, town.c])
    assert town.paused not in ids
    assert town.far not in ids
    a = next(item for item in body["items"] if item["id"] == town.a)
    assert [p["grade"] for p in a["prices"]] == ["92", "95"]
    assert (a["grade"], a["price_fen"], a["price_yuan"]) == (None, None, None)
    distances = [item["distance_m"] for item in body["items"]]
    assert distances == sorted(distances)
    wide = await _get(client, **KUNMING, radius_m=50_000, limit=50)
    assert town.far in [item["id"] for item in wide["items"]]


async def test_open_now_limit_radius_and_output_systems(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _to_local(23)
    town = await _town(runtime)
    body = await _get(client, **KUNMING, grade="95")
    b = next(item for item in body["items"] if item["id"] == town.b)
    assert b["open_now"] is False
    only_open = await _get(client, **KUNMING, grade="95", open_now="true")
    assert [item["id"] for item in only_open["items"]] == [town.a]
    one = await _get(client, **KUNMING, limit=1)
    assert one["count"] == 1
    origin = _origin_wgs84()
    near = min(
        [(town.a, (25.0420, 102.7080)), (town.b, (25.05, 102.715)), (town.c, (25.03, 102.70))],
        key=lambda item: _metres(origin, item[1]),
    )
    assert one["items"][0]["id"] == near[0]
    tiny = await _get(client, **KUNMING, radius_m=1)
    assert tiny["items"] == []
    wgs = await _get(client, lat=origin[0], lng=origin[1], coord="wgs84", grade="95")
    a = next(item for item in wgs["items"] if item["id"] == town.a)
    assert (a["lat"], a["lng"], a["coord"]) == (25.042, 102.708, "wgs84")
    bd_lng, bd_lat = cc.wgs2bd(102.7080, 25.0420)
    bd_origin_lng, bd_origin_lat = cc.gcj2bd(KUNMING["lng"], KUNMING["lat"])
    bd = await _get(client, lat=bd_origin_lat, lng=bd_origin_lng, coord="bd09", grade="95")
    a_bd = next(item for item in bd["items"] if item["id"] == town.a)
    assert a_bd["lat"] == pytest.approx(bd_lat, abs=1e-6)
    assert a_bd["lng"] == pytest.approx(bd_lng, abs=1e-6)
    assert a_bd["distance_m"] == pytest.approx(a["distance_m"], abs=0.2)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": 91, "lng": 102.71}, "query.lat"),
        ({"lat": -90.5, "lng": 102.71}, "query.lat"),
        ({"lat": "nan", "lng": 102.71}, "query.lat"),
        ({"lat": "north", "lng": 102.71}, "query.lat"),
        ({"lng": 102.71}, "query.lat"),
        ({"lat": 25.04, "lng": 180.01}, "query.lng"),
        ({"lat": 25.04, "lng": -181}, "query.lng"),
        ({"lat": 25.04, "lng": 102.71, "coord": "utm"}, "query.coord"),
        ({"lat": 25.04, "lng": 102.71, "radius_m": 50_001}, "query.radius_m"),
        ({"lat": 25.04, "lng": 102.71, "radius_m": 0}, "query.radius_m"),
        ({"lat": 25.04, "lng": 102.71, "limit": 51}, "query.limit"),
        ({"lat": 25.04, "lng": 102.71, "limit": 0}, "query.limit"),
        ({"lat": 25.04, "lng": 102.71, "open_now": "maybe"}, "query.open_now"),
        ({"lat": 25.04, "lng": 102.71, "sort": "price"}, "query.sort"),
        ({"lat": 25.04, "lng": 102.71, "grade": "93"}, "query.grade"),
        ({"lat": 25.04, "lng": 102.71, "grade": "123456789"}, "query.grade"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, runtime: Runtime, params: dict[str, Any], field: str
) -> None:
    async with runtime.db.unit_of_work() as session:
        await add_grades(session)
    resp = await client.get(URL, params=params)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["errors"][0]["reason"]
    assert field in body["detail"]


async def test_unknown_grade_reason_lists_known_grades(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    async with runtime.db.unit_of_work() as session:
        await add_grades(session)
    resp = await client.get(URL, params={**KUNMING, "grade": "93"})
    assert resp.json()["errors"] == [
        {"field": "query.grade", "reason": "unknown grade '93'; known: 92, 95, 98, 0, -10"}
    ]


async def test_index_follows_station_and_price_changes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    town = await _town(runtime)
    first = await _get(client, **KUNMING, grade="95")
    assert town.c not in [item["id"] for item in first["items"]]
    # A price for 95# at C makes it appear.
    async with runtime.db.unit_of_work() as session:
        c = await session.get(Station, town.c)
        assert c is not None
        await make_price(session, station=c, grade="95", price_fen=810)
    body = await _get(client, **KUNMING, grade="95")
    assert town.c in [item["id"] for item in body["items"]]
    # A new station next to the origin comes first.
    origin = _origin_wgs84()
    async with runtime.db.unit_of_work() as session:
        new = await make_station(session, name="新站", lat=origin[0], lng=origin[1] + 0.0001)
        await make_price(session, station=new, grade="95", price_fen=805)
        new_id = new.id
    body = await _get(client, **KUNMING, grade="95")
    assert body["items"][0]["id"] == new_id
    assert body["items"][0]["distance_m"] == pytest.approx(10.1, abs=0.1)
    # Moving it away drops it out of the radius.
    async with runtime.db.unit_of_work() as session:
        moved = await session.get(Station, new_id)
        assert moved is not None
        moved.lat, moved.lng = 26.5, 104.0
    body = await _get(client, **KUNMING, grade="95")
    assert new_id not in [item["id"] for item in body["items"]]
    # Closing A removes it.
    async with runtime.db.unit_of_work() as session:
        a = await session.get(Station, town.a)
        assert a is not None
        a.status = "paused"
    body = await _get(client, **KUNMING, grade="95")
    assert town.a not in [item["id"] for item in body["items"]]
    # Scheduled prices show once they take effect; a cancelled one never does.
    async with runtime.db.unit_of_work() as session:
        b = await session.get(Station, town.b)
        assert b is not None
        soon = clock.now() + timedelta(hours=1)
        await make_price(session, station=b, grade="95", price_fen=799, effective_at=soon)
        later = await make_price(
            session, station=b, grade="95", price_fen=750, effective_at=soon + timedelta(hours=1)
        )
        await make_price(session, station=b, grade="98", price_fen=905, effective_at=soon)
        c = await session.get(Station, town.c)
        assert c is not None
        await make_price(session, station=c, grade="98", price_fen=900, effective_at=soon)
        later_id = later.id
    body = await _get(client, **KUNMING, grade="95")
    assert next(i for i in body["items"] if i["id"] == town.b)["price_yuan"] == "8.30"
    assert (await _get(client, **KUNMING, grade="98"))["items"] == []
    async with runtime.db.unit_of_work() as session:
        await session.execute(
            update(StationPrice).where(StationPrice.id == later_id).values(cancelled_at=clock.now())
        )
        await session.execute(
            update(StationPrice)
            .where(StationPrice.station_id == town.b, StationPrice.grade_code == "98")
            .values(cancelled_at=clock.now())
        )
    clock.travel(timedelta(hours=3))
    body = await _get(client, **KUNMING, grade="95")
    assert next(i for i in body["items"] if i["id"] == town.b)["price_yuan"] == "7.99"
    only_c = await _get(client, **KUNMING, grade="98")
    assert [(i["id"], i["price_yuan"]) for i in only_c["items"]] == [(town.c, "9.00")]


async def test_invalidate_rebuilds_before_the_next_check_is_due(
    client: httpx.AsyncClient, runtime: Runtime, spatial_backend: str
) -> None:
    if spatial_backend != "memory":
        pytest.skip("PostGIS answers from the tables directly")
    town = await _town(runtime)
    runtime.nearby.refresh_seconds = 3600.0
    await _get(client, **KUNMING)
    assert runtime.nearby.rebuilds == 1
    await _get(client, **KUNMING)
    assert runtime.nearby.rebuilds == 1
    async with runtime.db.unit_of_work() as session:
        await session.execute(update(Station).where(Station.id == town.a).values(status="paused"))
        station = await make_station(session, name="后加站", lat=25.0431, lng=102.7086)
        new_id = station.id
    stale = [item["id"] for item in (await _get(client, **KUNMING))["items"]]
    assert town.a in stale  # the snapshot is up to refresh_seconds old
    assert new_id not in stale
    runtime.nearby.invalidate()
    fresh = [item["id"] for item in (await _get(client, **KUNMING))["items"]]
    assert fresh[0] == new_id
    assert town.a not in fresh
    assert runtime.nearby.rebuilds == 2


async def test_unchanged_tables_do_not_rebuild(
    client: httpx.AsyncClient, runtime: Runtime, spatial_backend: str
) -> None:
    await _town(runtime)
    for _ in range(3):
        await _get(client, **KUNMING)
    assert runtime.nearby.rebuilds == (1 if spatial_backend == "memory" else 0)
    assert await runtime.nearby.backend(runtime.db) == spatial_backend


async def test_geo_convert(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/api/v1/geo/convert", params={"lat": 25.04, "lng": 102.71, "from": "wgs84", "to": "gcj02"}
    )
    assert resp.status_code == 200, resp.text
    lng, lat = cc.wgs2gcj(102.71, 25.04)
    body = resp.json()
    assert body["coord"] == "gcj02"
    assert body["lat"] == pytest.approx(lat, abs=1e-7)
    assert body["lng"] == pytest.approx(lng, abs=1e-7)
    back = await client.get(
        "/api/v1/geo/convert",
        params={"lat": body["lat"], "lng": body["lng"], "from": "gcj02", "to": "bd09"},
    )
    bd_lng, bd_lat = cc.gcj2bd(body["lng"], body["lat"])
    assert back.json() == {"lat": round(bd_lat, 7), "lng": round(bd_lng, 7), "coord": "bd09"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": 25.04, "lng": 102.71, "from": "wgs", "to": "gcj02"}, "query.from"),
        ({"lat": 25.04, "lng": 102.71, "from": "wgs84"}, "query.to"),
        ({"lat": 95, "lng": 102.71, "from": "wgs84", "to": "gcj02"}, "query.lat"),
        ({"lat": 25.04, "lng": 102.71, "from": "wgs84", "to": "gcj02", "x": 1}, "query.x"),
    ],
)
async def test_geo_convert_bad_input(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    resp = await client.get("/api/v1/geo/convert", params=params)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == [field]


async def test_postgis_setting_without_postgis_is_unavailable(runtime: Runtime) -> None:
    from forecourt.errors import ServiceUnavailable
    from forecourt.search.service import NearbySearch

    if runtime.db.dialect != "sqlite":
        pytest.skip("checked on SQLite, which never has PostGIS")
    with pytest.raises(ServiceUnavailable, match=r"stations\.geog is missing"):
        await NearbySearch(backend="postgis").backend(runtime.db)


async def test_paused_rows_stay_out_even_when_nearest(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    town = await _town(runtime)
    async with runtime.db.read_only() as session:
        paused = await session.scalar(select(Station.status).where(Station.id == town.paused))
    assert paused == "paused"
    body = await _get(client, **KUNMING, grade="95", radius_m=50_000, limit=50)
    assert town.paused not in [item["id"] for item in body["items"]]
