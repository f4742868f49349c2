"""Shifts (交接班): one open per station, exact totals, close once, the printable summary."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from forecourt.backoffice.models import Shift
from forecourt.kit import clock
from tests.backoffice.conftest import Office, paid_order, pump_sale, succeeded_refund

API = "/api/v1/admin"


async def _open(office: Office, station_id: int, headers: dict[str, str]) -> dict[str, Any]:
    resp = await office.http.post(f"{API}/stations/{station_id}/shifts", headers=headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _backdate(office: Office, shift_id: int, hours: int = 2) -> datetime:
    """Move a shift's opening back so the test's sales fall inside its window."""
    opened = clock.now() - timedelta(hours=hours)
    async with office.runtime.db.unit_of_work() as session:
        await session.execute(update(Shift).where(Shift.id == shift_id).values(opened_at=opened))
    return opened


def _line(key: str, *values: int) -> dict[str, Any]:
    names = ("orders", "volume_ml", "gross_fen", "discounts_fen", "refunds_fen", "net_fen")
    return {"key": key, **dict(zip(names, values, strict=True))}


async def _sales_in_window(office: Office, start: datetime) -> None:
    rt, a, m = office.runtime, office.a, office.member_id
    at = start + timedelta(minutes=10)
    await paid_order(
        rt, station_id=a, member_id=m, provider="wechatpay", grade="92", volume_ml=30_000,
        list_fen=23_280, discount_fen=600, paid_at=at,
    )  # fmt: skip
    o2 = await paid_order(
        rt, station_id=a, member_id=m, provider="alipay", grade="95", volume_ml=20_000,
        list_fen=16_640, paid_at=at,
    )  # fmt: skip
    await succeeded_refund(
        rt, order_id=o2, amount_fen=5_000, completed_at=at + timedelta(minutes=5)
    )
    await paid_order(
        rt, station_id=a, member_id=m, provider="wallet", grade="92", volume_ml=10_000,
        list_fen=7_760, discount_fen=200, paid_at=at,
    )  # fmt: skip
    before = await paid_order(
        rt, station_id=a, member_id=m, provider="wechatpay", grade="95", volume_ml=5_000,
        list_fen=4_160, paid_at=start - timedelta(hours=1),
    )  # fmt: skip
    await succeeded_refund(rt, order_id=before, amount_fen=1_000, completed_at=at)
    await paid_order(rt, station_id=office.b, member_id=m, provider="wechatpay", paid_at=at)
    # Counter sales: one cleared by staff (cash), one cleared by a driver's order (not cash).
    await pump_sale(
        rt, station_id=a, seq=101, ended_at=at, status="cleared", cleared_by="staff:1",
        cleared_at=at + timedelta(minutes=1),
    )  # fmt: skip
    await pump_sale(
        rt, station_id=a, seq=102, ended_at=at, status="cleared", cleared_by="T000000000000001",
        cleared_at=at,
    )  # fmt: skip
    await pump_sale(
        rt, station_id=a, seq=103, grade="95", volume_ml=5_000, amount_fen=4_160,
        ended_at=at + timedelta(minutes=20),
    )  # fmt: skip
    await pump_sale(rt, station_id=a, seq=104, ended_at=start - timedelta(minutes=1))


async def test_shift_totals_over_short_and_unpaid_warning(office: Office) -> None:
    shift = await _open(office, office.a, office.attendant_a)
    assert (shift["status"], shift["totals"]["total"]["orders"]) == ("open", 0)
    start = await _backdate(office, shift["id"])
    await _sales_in_window(office, start)

    current = await office.http.get(
        f"{API}/stations/{office.a}/shifts/current", headers=office.attendant_a
    )
    assert current.status_code == 200, current.text
    totals = current.json()["totals"]
    assert totals["by_method"] == [
        _line("wechatpay", 1, 30_000, 23_280, 600, 1_000, 21_680),
        _line("alipay", 1, 20_000, 16_640, 0, 5_000, 11_640),
        _line("wallet", 1, 10_000, 7_760, 200, 0, 7_560),
        _line("cash", 1, 10_000, 7_760, 0, 0, 7_760),
    ]
    assert totals["by_grade"] == [
        _line("92", 3, 50_000, 38_800, 800, 0, 38_000),
        _line("95", 1, 20_000, 16_640, 0, 6_000, 10_640),
    ]
    assert totals["total"] == _line("total", 4, 70_000, 55_440, 800, 6_000, 48_640)
    assert current.json()["cash_expected_fen"] == 7_760
    unpaid = current.json()["unpaid_sales"]
    assert (unpaid["count"], unpaid["amount_fen"]) == (1, 4_160)
    assert [(s["fp"], s["seq"], s["amount_fen"]) for s in unpaid["items"]] == [(1, 103, 4_160)]

    closed = await office.http.post(
        f"{API}/shifts/{shift['id']}/close",
        json={"cash_counted_fen": 7_700, "note": "交班"},
        headers=office.attendant_a,
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["cash_counted_fen"], body["cash_expected_fen"]) == (
        "closed",
        7_700,
        7_760,
    )
    assert (body["over_short_fen"], body["net_fen"], body["note"]) == (-60, 48_640, "交班")
    assert body["warnings"] == ["本班有 1 笔未付款的加油记录，合计 ¥41.60"]
    assert body["totals"] == totals

    # Later money does not change a closed shift: its totals are the close-time snapshot.
    await paid_order(office.runtime, station_id=office.a, member_id=office.member_id)
    again = await office.http.get(f"{API}/shifts/{shift['id']}", headers=office.manager_a)
    assert again.json()["totals"] == totals
    assert again.json()["window_end"] == body["window_end"]
    none_open = await office.http.get(
        f"{API}/stations/{office.a}/shifts/current", headers=office.manager_a
    )
    assert (none_open.status_code, none_open.json()["code"]) == (404, "shift_not_found")

    page = await office.http.get(f"{API}/stations/{office.a}/shifts", headers=office.hq)
    [item] = page.json()["items"]
    assert (item["id"], item["over_short_fen"], item["net_fen"]) == (shift["id"], -60, 48_640)

    html = await office.http.get(f"{API}/shifts/{shift['id']}/summary", headers=office.attendant_a)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    for text in ("交接班单", body["station_name"], "短款 ¥0.60", "¥77.00", "¥77.60", "未付款"):
        assert text in html.text


async def test_one_open_shift_per_station_even_when_opened_together(office: Office) -> None:
    path = f"{API}/stations/{office.a}/shifts"
    first, second = await asyncio.gather(
        office.http.post(path, headers=office.attendant_a),
        office.http.post(path, headers=office.manager_a),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["code"] == "shift_already_open"
    async with office.runtime.db.read_only() as session:
        count = await session.scalar(
            select(func.count()).select_from(Shift).where(Shift.station_id == office.a)
        )
    assert count == 1
    # Another station is independent.
    assert (
        await office.http.post(f"{API}/stations/{office.b}/shifts", headers=office.hq)
    ).is_success


async def test_close_once_and_replay_with_the_same_key(office: Office) -> None:
    shift = await _open(office, office.a, office.manager_a)
    path = f"{API}/shifts/{shift['id']}/close"
    body = {"cash_counted_fen": 0}
    keyed = office.attendant_a | {"Idempotency-Key": "close-1"}
    first = await office.http.post(path, json=body, headers=keyed)
    assert first.status_code == 200, first.text
    replay = await office.http.post(path, json=body, headers=keyed)
    assert (replay.status_code, replay.json()) == (200, first.json())
    other_key = await office.http.post(
        path, json=body, headers=office.attendant_a | {"Idempotency-Key": "close-2"}
    )
    assert (other_key.status_code, other_key.json()["code"]) == (409, "shift_closed")
    no_key = await office.http.post(path, json=body, headers=office.manager_a)
    assert (no_key.status_code, no_key.json()["code"]) == (409, "shift_closed")
    # A new shift may open once the last one is closed.
    assert (
        await office.http.post(f"{API}/stations/{office.a}/shifts", headers=office.hq)
    ).is_success


async def test_bad_close_input_names_the_field_and_saves_nothing(office: Office) -> None:
    shift = await _open(office, office.a, office.attendant_a)
    path = f"{API}/shifts/{shift['id']}/close"
    for body, field in (
        ({"cash_counted_fen": -1}, "body.cash_counted_fen"),
        ({}, "body.cash_counted_fen"),
        ({"cash_counted_fen": 1, "extra": 1}, "body.extra"),
        ({"cash_counted_fen": 1, "note": "x" * 501}, "body.note"),
    ):
        resp = await office.http.post(path, json=body, headers=office.attendant_a)
        assert resp.status_code == 422, resp.text
        assert [e["field"] for e in resp.json()["errors"]] == [field]
    still = await office.http.get(f"{API}/shifts/{shift['id']}", headers=office.attendant_a)
    assert (still.json()["status"], still.json()["cash_counted_fen"]) == ("open", None)


async def test_shift_routes_are_scoped_to_the_callers_stations(office: Office) -> None:
    shift = await _open(office, office.a, office.attendant_a)
    sid = shift["id"]
    for method, path in (
        ("GET", f"{API}/shifts/{sid}"),
        ("GET", f"{API}/shifts/{sid}/summary"),
        ("POST", f"{API}/shifts/{sid}/close"),
        ("POST", f"{API}/stations/{office.a}/shifts"),
        ("GET", f"{API}/stations/{office.a}/shifts"),
        ("GET", f"{API}/stations/{office.a}/shifts/current"),
    ):
        body = {"cash_counted_fen": 0} if path.endswith("/close") else None
        resp = await office.http.request(method, path, json=body, headers=office.attendant_b)
        assert resp.status_code == 404, (method, path, resp.text)
    missing = await office.http.post(f"{API}/stations/999999/shifts", headers=office.hq)
    assert missing.status_code == 404
    anonymous = await office.http.get(f"{API}/shifts/{sid}")
    assert anonymous.status_code == 401
