"""Staff equipment CRUD, alerts and the public nozzle snapshot over HTTP."""

from __future__ import annotations

import httpx

from forecourt.kit import clock
from forecourt.pump import alerts as pump_alerts
from forecourt.runtime import Runtime
from tests.fixtures.factories import make_staff_token
from tests.pump.helpers import ScriptedGateway, eventually, make_pump_station, sale_report

API = "/api/v1"


async def test_manager_builds_a_forecourt_and_bad_input_names_the_field(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    station = await make_pump_station(runtime)
    other = await make_pump_station(runtime, grades=False)
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(station.id,))
    base = f"{API}/admin/stations/{station.id}"

    resp = await client.post(f"{base}/dispensers", json={"number": 2}, headers=manager)
    assert resp.status_code == 201, resp.text
    dispenser_id = resp.json()["id"]
    resp = await client.post(
        f"{base}/fuelling-points", json={"dispenser_id": dispenser_id, "number": 3}, headers=manager
    )
    assert resp.status_code == 201, resp.text
    assert (resp.json()["state"], resp.json()["state_code"]) == ("Offline", 10)
    resp = await client.post(
        f"{base}/nozzles",
        json={"number": 4, "fp_number": 3, "grade": "95", "tank_number": 2},
        headers=manager,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json() == {
        "number": 4,
        "fp": 3,
        "grade": "95",
        "tank_number": 2,
        "active": True,
        "totalizer_volume_ml": 0,
        "totalizer_amount_fen": 0,
    }

    cases = [
        ({"number": 4, "fp_number": 3, "grade": "95"}, 409, "body.number"),
        ({"number": 5, "fp_number": 3, "grade": "99"}, 422, "body.grade"),
        ({"number": 5, "fp_number": 9, "grade": "95"}, 422, "body.fp_number"),
        ({"number": 5, "fp_number": 3, "grade": "92", "tank_number": 2}, 422, "body.tank_number"),
        ({"number": 5, "fp_number": 3, "grade": "92", "tank_number": 7}, 422, "body.tank_number"),
        ({"number": 0, "fp_number": 3, "grade": "92"}, 422, "body.number"),
    ]
    for body, code, field in cases:
        resp = await client.post(f"{base}/nozzles", json=body, headers=manager)
        assert resp.status_code == code, (body, resp.text)
        assert [e["field"] for e in resp.json()["errors"]] == [field], body

    resp = await client.patch(
        f"{base}/nozzles/4", json={"active": False, "tank_number": None}, headers=manager
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["active"], resp.json()["tank_number"]) == (False, None)
    resp = await client.get(f"{base}/equipment", headers=manager)
    assert resp.status_code == 200
    numbers = [
        (d["number"], fp["number"], [n["number"] for n in fp["nozzles"]])
        for d in resp.json()["dispensers"]
        for fp in d["fuelling_points"]
    ]
    assert numbers == [(1, 1, [1, 2]), (1, 2, [3]), (2, 3, [4])]
    assert (await client.delete(f"{base}/nozzles/4", headers=manager)).status_code == 204
    assert (await client.delete(f"{base}/fuelling-points/3", headers=manager)).status_code == 204
    resp = await client.delete(f"{base}/dispensers/{dispenser_id}", headers=manager)
    assert resp.status_code == 204

    # Another station's equipment is invisible; attendants may not change equipment.
    resp = await client.get(f"{API}/admin/stations/{other.id}/equipment", headers=manager)
    assert resp.status_code == 404
    resp = await client.post(
        f"{API}/admin/stations/{other.id}/dispensers", json={"number": 9}, headers=manager
    )
    assert resp.status_code == 404
    attendant = await make_staff_token(runtime, role="attendant", station_ids=(station.id,))
    resp = await client.post(f"{base}/dispensers", json={"number": 9}, headers=attendant)
    assert resp.status_code == 403


async def test_equipment_with_sales_is_kept(link: Runtime, client: httpx.AsyncClient) -> None:
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.sale(
        1, sale_report(seq=1, nozzle=2, grade="95", volume_ml=10_000, unit_price_fen=832)
    )

    async def acked() -> bool:
        return len(gateway.sale_acks) == 1

    await eventually(acked, what="sale ack")
    manager = await make_staff_token(link, role="station_manager", station_ids=(station.id,))
    base = f"{API}/admin/stations/{station.id}"
    resp = await client.delete(f"{base}/nozzles/2", headers=manager)
    assert resp.status_code == 409
    assert resp.json()["code"] == "equipment_in_use"
    resp = await client.delete(f"{base}/fuelling-points/1", headers=manager)
    assert resp.json()["code"] == "equipment_in_use"
    await gateway.disconnect()


async def test_public_snapshot_shows_state_price_and_payable_sales(
    link: Runtime, client: httpx.AsyncClient
) -> None:
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    await gateway.state(2, 4, nozzle=3)
    await gateway.sale(
        1, sale_report(seq=1, nozzle=2, grade="95", volume_ml=35_500, unit_price_fen=832)
    )
    await gateway.sale(
        1,
        sale_report(
            seq=2, nozzle=1, grade="92", volume_ml=10_000, unit_price_fen=776, auth_ref="ord_9"
        ),
    )

    async def acked() -> bool:
        return len(gateway.sale_acks) == 2

    await eventually(acked, what="two sale acks")

    async def calling() -> dict[str, object] | None:
        body: dict[str, object] = (await client.get(f"{API}/stations/{station.id}/nozzles")).json()
        nozzles = body["nozzles"]
        assert isinstance(nozzles, list)
        return body if nozzles[2]["state"] == "Calling" else None

    body = await eventually(calling, what="snapshot with fp 2 calling")
    assert body["gateway_online"] is True
    assert body["nozzles"] == [
        {
            "number": 1,
            "fp": 1,
            "grade": "92",
            "price_fen": 776,
            "state": "Idle",
            "state_code": 3,
            "payable": [],
            "payable_volume_ml": 0,
            "payable_amount_fen": 0,
        },
        {
            "number": 2,
            "fp": 1,
            "grade": "95",
            "price_fen": 832,
            "state": "Idle",
            "state_code": 3,
            "payable": [
                {
                    "fp": 1,
                    "seq": 1,
                    "volume_ml": 35_500,
                    "amount_fen": 29_536,
                    "ended_at": body["nozzles"][1]["payable"][0]["ended_at"],  # type: ignore[index]
                }
            ],
            "payable_volume_ml": 35_500,
            "payable_amount_fen": 29_536,
        },
        {
            "number": 3,
            "fp": 2,
            "grade": "95",
            "price_fen": 832,
            "state": "Calling",
            "state_code": 4,
            "payable": [],
            "payable_volume_ml": 0,
            "payable_amount_fen": 0,
        },
    ]
    assert (await client.get(f"{API}/stations/999999/nozzles")).status_code == 404
    await gateway.disconnect()


async def test_alerts_are_listed_and_resolved_in_scope(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    station = await make_pump_station(runtime)
    async with runtime.db.unit_of_work() as session:
        for _ in range(3):
            row = await pump_alerts.raise_alert(
                session,
                station_id=station.id,
                kind="pump_input",
                code="sequence_conflict",
                detail="seq 7: a different sale already holds this seq",
                now=clock.now(),
            )
        alert_id = row.id
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(station.id,))
    outsider = await make_staff_token(runtime, role="station_manager", station_ids=())
    base = f"{API}/admin/stations/{station.id}/alerts"
    resp = await client.get(base, headers=manager)
    assert [(a["code"], a["occurrences"]) for a in resp.json()] == [("sequence_conflict", 3)]
    assert (await client.get(base, headers=outsider)).status_code == 404
    resp = await client.post(f"{base}/{alert_id}/resolve", headers=outsider)
    assert resp.status_code == 404
    resp = await client.post(f"{base}/{alert_id}/resolve", headers=manager)
    assert resp.status_code == 200
    assert resp.json()["resolved_at"] is not None
    assert (await client.get(base, headers=manager)).json() == []
