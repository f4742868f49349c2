"""The audit log: written with the action in one unit of work, never for a refused one."""

from __future__ import annotations

from typing import Any

import pytest

from forecourt.backoffice.audit import scrub
from forecourt.kit.pan import luhn_ok
from tests.backoffice.conftest import Office, paid_order

API = "/api/v1/admin"


async def _entries(office: Office, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    resp = await office.http.get(f"{API}/audit", params=query, headers=headers)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_price_changes_are_audited_and_refused_ones_are_not(office: Office) -> None:
    path = f"{API}/stations/{office.a}/prices"
    made = await office.http.post(
        path, json={"grade": "92", "price_fen": 700}, headers=office.manager_a
    )
    assert made.status_code == 201, made.text
    above_cap = await office.http.post(
        path, json={"grade": "92", "price_fen": 99_999}, headers=office.manager_a
    )
    assert (above_cap.status_code, above_cap.json()["code"]) == (422, "price_above_cap")
    later = await office.http.post(
        path, json={"grade": "95", "price_fen": 750, "at_midnight": True}, headers=office.hq
    )
    cancelled = await office.http.delete(f"{path}/{later.json()['id']}", headers=office.manager_a)
    assert cancelled.status_code == 200, cancelled.text

    entries = await _entries(office, office.hq)
    assert [(e["action"], e["subject_id"], e["station_id"]) for e in entries] == [
        ("price.cancelled", str(later.json()["id"]), office.a),
        ("price.scheduled", str(later.json()["id"]), office.a),
        ("price.scheduled", str(made.json()["id"]), office.a),
    ]
    first = entries[-1]
    assert first["details"] == {
        "grade": "92",
        "price_fen": 700,
        "effective_at": first["details"]["effective_at"],
    }
    assert first["subject_type"] == "price"
    assert first["staff_name"].startswith("station_manager")


async def test_refunds_are_audited_and_refused_ones_are_not(office: Office) -> None:
    order_id = await paid_order(
        office.runtime, station_id=office.a, member_id=office.member_id, list_fen=80_000
    )
    path = f"{API}/orders/{order_id}/refunds"
    small = await office.http.post(
        path, json={"amount_fen": 1_000, "reason": "油品问题"}, headers=office.attendant_a
    )
    assert small.status_code == 201, small.text
    too_much = await office.http.post(
        path, json={"amount_fen": 90_000, "reason": "油品问题"}, headers=office.attendant_a
    )
    assert (too_much.status_code, too_much.json()["code"]) == (422, "refund_exceeds_paid")
    held = await office.http.post(
        path, json={"amount_fen": 60_000, "reason": "整单退款"}, headers=office.attendant_a
    )
    assert held.json()["status"] == "pending_approval"
    decided = await office.http.post(
        f"{API}/refunds/{held.json()['id']}/decision",
        json={"approve": False},
        headers=office.manager_a,
    )
    assert decided.status_code == 200, decided.text

    entries = await _entries(office, office.manager_a)
    assert [(e["action"], e["subject_id"]) for e in entries] == [
        ("refund.decided", held.json()["id"]),
        ("refund.requested", held.json()["id"]),
        ("refund.requested", small.json()["id"]),
    ]
    assert entries[0]["details"] == {"order_id": order_id, "amount_fen": 60_000, "approve": False}
    assert entries[2]["details"] == {
        "order_id": order_id,
        "amount_fen": 1_000,
        "reason": "油品问题",
        "status": "processing",
    }
    assert {e["station_id"] for e in entries} == {office.a}


async def test_points_adjustments_are_audited_and_refused_ones_are_not(office: Office) -> None:
    path = f"{API}/loyalty/members/{office.member_id}/adjustments"
    added = await office.http.post(
        path, json={"points": 500, "reason": f"补录 {office.phone}"}, headers=office.hq
    )
    assert added.status_code == 201, added.text
    overdraw = await office.http.post(
        path, json={"points": -501, "reason": "扣回"}, headers=office.hq
    )
    assert overdraw.status_code in (409, 422)
    [entry] = await _entries(office, office.hq, action="points.adjusted")
    assert (entry["subject_type"], entry["subject_id"], entry["station_id"]) == (
        "member",
        str(office.member_id),
        None,
    )
    masked = f"{office.phone[:3]}****{office.phone[-4:]}"
    assert entry["details"] == {
        "points": 500,
        "reason": f"补录 {masked}",
        "entry_id": added.json()["id"],
    }
    # Head-office actions without a station are not shown to station managers.
    assert await _entries(office, office.manager_a) == []


async def test_who_sees_which_entries_filters_and_pages(office: Office) -> None:
    for station, headers in ((office.a, office.manager_a), (office.b, office.manager_b)):
        for price in (700, 710, 720):
            resp = await office.http.post(
                f"{API}/stations/{station}/prices",
                json={"grade": "92", "price_fen": price},
                headers=headers,
            )
            assert resp.status_code == 201, resp.text
    everything = await _entries(office, office.hq)
    assert len(everything) == 6
    mine = await _entries(office, office.manager_a)
    assert [e["station_id"] for e in mine] == [office.a] * 3
    assert [e["details"]["price_fen"] for e in mine] == [720, 710, 700]
    by_station = await _entries(office, office.hq, station_id=office.b)
    assert {e["station_id"] for e in by_station} == {office.b}
    staff_id = mine[0]["staff_id"]
    assert await _entries(office, office.hq, staff_id=staff_id) == mine
    assert await _entries(office, office.hq, action="refund.requested") == []

    seen: list[int] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await office.http.get(f"{API}/audit", params=query, headers=office.hq)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything]

    other = await office.http.get(
        f"{API}/audit", params={"station_id": office.b}, headers=office.manager_a
    )
    assert other.status_code == 404
    attendant = await office.http.get(f"{API}/audit", headers=office.attendant_a)
    assert attendant.status_code == 403
    for query, field in (
        ({"cursor": "abc"}, "cursor"),
        ({"action": "price.deleted"}, "query.action"),
        ({"limit": 0}, "query.limit"),
        ({"since": "2026-01-01T00:00:00"}, "query.since"),
    ):
        bad = await office.http.get(f"{API}/audit", params=query, headers=office.hq)
        assert bad.status_code == 422, (query, bad.text)
        assert [e["field"] for e in bad.json()["errors"]] == [field]


def _pan() -> str:
    body = "622202123456789012"
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


@pytest.mark.parametrize("wrap", [str, lambda v: {"nested": [v]}])
def test_details_never_keep_card_or_phone_numbers(wrap: Any) -> None:
    pan = _pan()
    cleaned = scrub(wrap(f"卡号 {pan} 手机 13912345678"))
    text = str(cleaned)
    assert pan not in text
    assert "13912345678" not in text
    assert "6222****" in text
    assert "139****5678" in text
