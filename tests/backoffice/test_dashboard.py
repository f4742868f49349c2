"""The dashboard: SQL aggregation in Asia/Shanghai hours and days, scoped to the caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from forecourt.backoffice.dashboard import window
from forecourt.kit import clock
from tests.backoffice.conftest import Office, paid_order, pump_sale, succeeded_refund

API = "/api/v1/admin/dashboard"


def test_window_is_business_days() -> None:
    now = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)  # 01:30 on the 25th in Shanghai
    assert window(1, now) == (
        datetime(2026, 11, 24, 16, tzinfo=UTC),
        now + timedelta(hours=22, minutes=30),
        3600,
        24,
    )
    start, end, size, count = window(7, now)
    assert (start, end, size, count) == (
        datetime(2026, 11, 18, 16, tzinfo=UTC),
        datetime(2026, 11, 25, 16, tzinfo=UTC),
        86_400,
        7,
    )


async def test_today_in_hourly_buckets_of_shanghai(office: Office) -> None:
    midnight, _, _, _ = window(1, clock.now())  # today's 00:00 in Shanghai, as UTC
    rt, a, m = office.runtime, office.a, office.member_id
    # 00:30 Shanghai is still the previous day in UTC: it belongs to today's first hour.
    o1 = await paid_order(
        rt, station_id=a, member_id=m, provider="wechatpay", grade="92", volume_ml=30_000,
        list_fen=23_280, discount_fen=600, paid_at=midnight + timedelta(minutes=30),
    )  # fmt: skip
    await paid_order(
        rt, station_id=a, member_id=m, provider="alipay", grade="95", volume_ml=20_000,
        list_fen=16_640, paid_at=midnight + timedelta(hours=9, minutes=59),
    )  # fmt: skip
    await succeeded_refund(
        rt, order_id=o1, amount_fen=2_000, completed_at=midnight + timedelta(hours=9, minutes=5)
    )
    await pump_sale(
        rt, station_id=a, seq=7, status="cleared", cleared_by="staff:1",
        cleared_at=midnight + timedelta(hours=23, minutes=59), ended_at=midnight,
    )  # fmt: skip
    # 23:30 yesterday in Shanghai (the same UTC date as today's midnight): not today.
    await paid_order(rt, station_id=a, member_id=m, paid_at=midnight - timedelta(minutes=30))
    await paid_order(rt, station_id=office.b, member_id=m, paid_at=midnight + timedelta(hours=1))

    resp = await office.http.get(API, params={"station_id": a, "days": 1}, headers=office.manager_a)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["totals"] == {
        "key": "total",
        "orders": 3,
        "volume_ml": 60_000,
        "gross_fen": 47_680,
        "discounts_fen": 600,
        "refunds_fen": 2_000,
        "net_fen": 45_080,
    }
    series = body["series"]
    assert len(series) == 24
    assert [b["label"] for b in series[:3]] == ["00:00", "01:00", "02:00"]
    assert datetime.fromisoformat(series[0]["start"]) == midnight
    busy = {
        i: (b["orders"], b["gross_fen"], b["net_fen"])
        for i, b in enumerate(series)
        if b["orders"] or b["net_fen"]
    }
    assert busy == {0: (1, 23_280, 22_680), 9: (1, 16_640, 14_640), 23: (1, 7_760, 7_760)}
    assert [(g["key"], g["orders"], g["net_fen"]) for g in body["by_grade"]] == [
        ("92", 2, 28_440),
        ("95", 1, 16_640),
    ]
    assert [(p["key"], p["net_fen"]) for p in body["by_method"]] == [
        ("wechatpay", 20_680),
        ("alipay", 16_640),
        ("cash", 7_760),
    ]


async def test_seven_days_in_daily_buckets_and_scope(office: Office) -> None:
    start, _, _, _ = window(7, clock.now())
    rt, m = office.runtime, office.member_id
    await paid_order(rt, station_id=office.a, member_id=m, paid_at=start - timedelta(minutes=1))
    await paid_order(rt, station_id=office.a, member_id=m, paid_at=start + timedelta(minutes=1))
    late = start + timedelta(days=5, hours=23, minutes=59)  # the 6th day's last minute
    await paid_order(rt, station_id=office.a, member_id=m, paid_at=late)
    await paid_order(rt, station_id=office.b, member_id=m, paid_at=late, list_fen=1_000)

    mine = (await office.http.get(API, params={"days": 7}, headers=office.manager_a)).json()
    assert [b["orders"] for b in mine["series"]] == [1, 0, 0, 0, 0, 1, 0]
    assert mine["series"][0]["label"] == clock.local(start).strftime("%Y-%m-%d")
    assert mine["totals"]["gross_fen"] == 2 * 23_280
    everyone = (await office.http.get(API, params={"days": 30}, headers=office.hq)).json()
    assert (everyone["totals"]["orders"], everyone["totals"]["gross_fen"]) == (
        4,
        3 * 23_280 + 1_000,
    )
    assert len(everyone["series"]) == 30
    only_b = (
        await office.http.get(API, params={"days": 7, "station_id": office.b}, headers=office.hq)
    ).json()
    assert only_b["totals"]["gross_fen"] == 1_000

    other = await office.http.get(API, params={"station_id": office.b}, headers=office.manager_a)
    assert other.status_code == 404
    attendant = await office.http.get(API, headers=office.attendant_a)
    assert attendant.status_code == 403
    bad = await office.http.get(API, params={"days": 3}, headers=office.hq)
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "query.days", "reason": "must be 1, 7 or 30"}]
