"""Tank routes: scoping, validation, idempotent deliveries, reconcile, public availability."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from forecourt.kit import clock
from forecourt.pump.models import StationAlert, TankDelivery
from forecourt.runtime import Runtime
from forecourt.station.models import Station
from forecourt.tank import service
from tests.fixtures.factories import make_price, make_staff_token
from tests.fixtures.tanks import Site, add_tank, reading

ADMIN = "/api/v1/admin/stations/{sid}/tanks"
TANK = {
    "number": 1,
    "grade": "92",
    "capacity_ml": 30_000_000,
    "low_ml": 3_000_000,
    "out_ml": 500_000,
    "variance_alert_ml": 200_000,
    "opening_ml": 12_000_000,
}


def _fields(resp: httpx.Response) -> set[str]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    return {e["field"] for e in resp.json()["errors"]}


async def test_manager_crud_and_scope(
    client: httpx.AsyncClient, runtime: Runtime, site: Site
) -> None:
    manager_a = await make_staff_token(runtime, role="station_manager", station_ids=(site.a,))
    created = await client.post(ADMIN.format(sid=site.a), json=TANK, headers=manager_a)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["number"], body["grade"], body["book_ml"], body["measured_ml"]) == (
        1,
        "92",
        12_000_000,
        None,
    )
    assert body["availability"] == "in_stock"
    again = await client.post(ADMIN.format(sid=site.a), json=TANK, headers=manager_a)
    assert again.status_code == 409
    patched = await client.patch(
        ADMIN.format(sid=site.a) + "/1", json={"low_ml": 13_000_000}, headers=manager_a
    )
    assert patched.status_code == 200
    assert patched.json()["availability"] == "low"
    listed = await client.get(ADMIN.format(sid=site.a), headers=manager_a)
    assert [t["number"] for t in listed.json()] == [1]

    # Station B is outside the manager's scope: 404 everywhere, nothing created.
    async with runtime.db.unit_of_work() as s:
        await add_tank(s, station_id=site.b, number=1)
    base_b = ADMIN.format(sid=site.b)
    calls = [
        client.get(base_b, headers=manager_a),
        client.post(base_b, json={**TANK, "number": 2}, headers=manager_a),
        client.get(base_b + "/1", headers=manager_a),
        client.patch(base_b + "/1", json={"low_ml": 1}, headers=manager_a),
        client.delete(base_b + "/1", headers=manager_a),
        client.get(base_b + "/1/readings", headers=manager_a),
        client.get(base_b + "/1/deliveries", headers=manager_a),
        client.post(base_b + "/1/reconcile", json={}, headers=manager_a),
        client.post(
            base_b + "/1/deliveries",
            json={"client_ref": "x", "volume_ml": 1, "delivered_at": clock.now().isoformat()},
            headers=manager_a,
        ),
    ]
    for call in calls:
        resp = await call
        assert resp.status_code == 404, resp.text
    hq = await make_staff_token(runtime, role="hq_admin")
    assert [t["number"] for t in (await client.get(base_b, headers=hq)).json()] == [1]
    attendant = await make_staff_token(runtime, role="attendant", station_ids=(site.a,))
    assert (await client.get(ADMIN.format(sid=site.a), headers=attendant)).status_code == 200
    denied = await client.post(ADMIN.format(sid=site.a), json=TANK, headers=attendant)
    assert denied.status_code == 403
    assert (await client.get(ADMIN.format(sid=site.a))).status_code == 401

    deleted = await client.delete(ADMIN.format(sid=site.a) + "/1", headers=manager_a)
    assert deleted.status_code == 204
    assert (await client.get(ADMIN.format(sid=site.a) + "/1", headers=manager_a)).status_code == 404


async def test_bad_input_names_the_fields(
    client: httpx.AsyncClient, runtime: Runtime, site: Site
) -> None:
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(site.a,))
    base = ADMIN.format(sid=site.a)
    assert _fields(
        await client.post(base, json={**TANK, "capacity_ml": -1, "grade": "9 5"}, headers=manager)
    ) == {"body.capacity_ml", "body.grade"}
    assert _fields(
        await client.post(base, json={**TANK, "low_ml": 40_000_000}, headers=manager)
    ) == {"body"}
    unknown = await client.post(base, json={**TANK, "grade": "99"}, headers=manager)
    assert _fields(unknown) == {"grade"}
    assert _fields(await client.post(base, json={**TANK, "colour": "red"}, headers=manager)) == {
        "body.colour"
    }
    assert (await client.post(base, json=TANK, headers=manager)).status_code == 201
    assert _fields(
        await client.patch(base + "/1", json={"out_ml": 20_000_000}, headers=manager)
    ) == {"out_ml"}
    bad_delivery = await client.post(
        base + "/1/deliveries",
        json={"client_ref": "", "volume_ml": 0, "delivered_at": "2026-05-01T00:00:00"},
        headers=manager,
    )
    assert _fields(bad_delivery) == {"body.client_ref", "body.volume_ml", "body.delivered_at"}
    too_big = await client.post(
        base + "/1/deliveries",
        json={
            "client_ref": "dn-1",
            "volume_ml": 30_000_001,
            "delivered_at": (clock.now() + timedelta(days=1)).isoformat(),
        },
        headers=manager,
    )
    assert _fields(too_big) == {"volume_ml", "delivered_at"}
    naive = await client.get(
        base + "/1/readings", params={"since": "2026-05-01T00:00:00"}, headers=manager
    )
    assert _fields(naive) == {"query.since"}


async def test_staff_delivery_is_idempotent_by_client_ref(
    client: httpx.AsyncClient, runtime: Runtime, site: Site
) -> None:
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(site.a,))
    base = ADMIN.format(sid=site.a)
    opening = (clock.now() - timedelta(days=1)).isoformat()
    created = await client.post(base, json={**TANK, "opening_at": opening}, headers=manager)
    assert created.status_code == 201
    when = clock.now().replace(microsecond=0).isoformat()
    payload: dict[str, Any] = {
        "client_ref": "20260501-dn-0042",
        "volume_ml": 8_000_000,
        "delivered_at": when,
        "note": "送油单 0042",
    }
    async with runtime.live.subscribe(site.a) as sub:
        first = await client.post(base + "/1/deliveries", json=payload, headers=manager)
        second = await client.post(base + "/1/deliveries", json=payload, headers=manager)
        message = await sub.get(5)
        assert await sub.get(0.05) is None  # the replay publishes nothing
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["replayed"] is False
    assert second.json()["replayed"] is True
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["ref"] == "20260501-dn-0042"
    assert first.json()["source"] == "staff"
    assert message is not None
    assert (message["type"], message["tank"], message["book_ml"]) == ("tank", 1, 20_000_000)
    conflict = await client.post(
        base + "/1/deliveries", json={**payload, "volume_ml": 8_000_001}, headers=manager
    )
    assert conflict.status_code == 409
    status = await client.get(base + "/1", headers=manager)
    assert status.json()["book_ml"] == 12_000_000 + 8_000_000
    history = await client.get(base + "/1/deliveries", headers=manager)
    assert [(d["ref"], d["volume_ml"], d["note"]) for d in history.json()] == [
        ("20260501-dn-0042", 8_000_000, "送油单 0042")
    ]


async def test_reconcile_resets_book_to_measured(
    client: httpx.AsyncClient, runtime: Runtime, site: Site
) -> None:
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(site.a,))
    base = ADMIN.format(sid=site.a)
    opening = (clock.now() - timedelta(hours=2)).isoformat()
    created = await client.post(base, json={**TANK, "opening_at": opening}, headers=manager)
    assert created.status_code == 201
    no_reading = await client.post(base + "/1/reconcile", json={}, headers=manager)
    assert no_reading.status_code == 409
    async with runtime.db.unit_of_work() as s:
        await service.record_reading(
            s, station_id=site.a, tank_number=1, reading=reading(event_seq=5, volume_ml=11_500_000)
        )
    status = (await client.get(base + "/1", headers=manager)).json()
    assert (status["variance_ml"], status["variance_alert"]) == (-500_000, True)
    readings = (await client.get(base + "/1/readings", headers=manager)).json()
    assert [(r["volume_ml"], r["book_ml"], r["variance_ml"]) for r in readings] == [
        (11_500_000, 12_000_000, -500_000)
    ]
    done = await client.post(base + "/1/reconcile", json={"note": "dip check"}, headers=manager)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["book_ml"], body["variance_ml"], body["variance_alert"]) == (11_500_000, 0, False)
    async with runtime.db.read_only() as s:
        ledger = (await s.scalars(select(TankDelivery))).one()
        assert (ledger.source, ledger.volume_ml, ledger.note) == (
            "reconcile",
            -500_000,
            "dip check",
        )
        assert ledger.entered_by is not None
        alert = (await s.scalars(select(StationAlert))).one()
        assert (alert.kind, alert.resolved_at is not None) == ("tank_variance", True)


async def test_public_availability_and_nearby_search(
    client: httpx.AsyncClient, runtime: Runtime, site: Site
) -> None:
    async with runtime.db.unit_of_work() as s:
        station_a = await s.get(Station, site.a)
        station_b = await s.get(Station, site.b)
        assert station_a is not None
        assert station_b is not None
        for station in (station_a, station_b):
            await make_price(s, station=station, grade="92", price_fen=790)
        await make_price(s, station=station_a, grade="95", price_fen=845)
        await add_tank(s, station_id=site.a, number=1, grade="92", low_ml=3_000_000)
    async with runtime.db.unit_of_work() as s:
        await service.record_reading(
            s, station_id=site.a, tank_number=1, reading=reading(event_seq=1, volume_ml=2_500_000)
        )
    resp = await client.get(f"/api/v1/stations/{site.a}/tanks/availability")
    assert resp.status_code == 200
    assert resp.json() == {
        "station_id": site.a,
        "grades": [
            {"grade": "92", "availability": "low"},
            {"grade": "95", "availability": "unknown"},
        ],
    }
    assert (await client.get("/api/v1/stations/999999/tanks/availability")).status_code == 404
    nearby = await client.get(
        "/api/v1/stations/nearby", params={"lat": 25.04, "lng": 102.71, "grade": "92"}
    )
    assert nearby.status_code == 200, nearby.text
    found = {item["id"]: item["availability"] for item in nearby.json()["items"]}
    assert found == {site.a: "low", site.b: "unknown"}
