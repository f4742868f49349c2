"""Staff speaker routes: who may call them and what they answer."""

from __future__ import annotations

import httpx

from forecourt.runtime import Runtime
from tests.fixtures.auth import insert_station
from tests.fixtures.factories import make_staff_token, member_headers


async def test_attendant_announces_at_own_station_and_reads_the_history(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    station_id = await insert_station(runtime)
    headers = await make_staff_token(runtime, role="attendant", station_ids=(station_id,))
    url = f"/api/v1/admin/stations/{station_id}/speaker"
    r = await client.post(
        f"{url}/announce", json={"text": "请 3 号枪车主到收银台", "speaker": 2}, headers=headers
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert {k: body[k] for k in ("station_id", "speaker", "text", "status", "attempts")} == {
        "station_id": station_id,
        "speaker": 2,
        "text": "请 3 号枪车主到收银台",
        "status": "pending",
        "attempts": 0,
    }
    assert body["message_id"].startswith("ann_")
    listed = await client.get(f"{url}/announcements", headers=headers)
    assert listed.status_code == 200
    assert [i["message_id"] for i in listed.json()["items"]] == [body["message_id"]]


async def test_other_stations_staff_get_404_and_drivers_403(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    station_id = await insert_station(runtime)
    other = await insert_station(runtime)
    manager = await make_staff_token(runtime, role="station_manager", station_ids=(other,))
    url = f"/api/v1/admin/stations/{station_id}/speaker"
    r = await client.post(f"{url}/announce", json={"text": "你好"}, headers=manager)
    assert r.status_code == 404
    assert (await client.get(f"{url}/announcements", headers=manager)).status_code == 404
    driver = member_headers(runtime)
    assert (
        await client.post(f"{url}/announce", json={"text": "x"}, headers=driver)
    ).status_code == 403
    assert (await client.post(f"{url}/announce", json={"text": "x"})).status_code == 401
    hq = await make_staff_token(runtime, role="hq_admin")
    missing = "/api/v1/admin/stations/999999/speaker/announce"
    assert (await client.post(missing, json={"text": "x"}, headers=hq)).status_code == 404


async def test_text_out_of_range_is_422_naming_the_field(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    station_id = await insert_station(runtime)
    headers = await make_staff_token(runtime, role="station_manager", station_ids=(station_id,))
    url = f"/api/v1/admin/stations/{station_id}/speaker/announce"
    for text in ("", "长" * 101):
        r = await client.post(url, json={"text": text}, headers=headers)
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "body.text" in r.text
    r = await client.post(url, json={"text": "好", "speaker": 0}, headers=headers)
    assert r.status_code == 422
    assert "body.speaker" in r.text
