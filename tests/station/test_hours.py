"""One opening-hours rule for station pages, nearby search and the index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forecourt.station.hours import NO_TIME, is_open, open_at_minute, parse_hhmm

MIDNIGHT = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 00:00 in Asia/Shanghai


def _at(hhmm: str) -> datetime:
    return MIDNIGHT + timedelta(minutes=parse_hhmm(hhmm))


@pytest.mark.parametrize(
    ("opens", "closes", "open_at", "closed_at"),
    [
        ("06:00", "22:00", ["06:00", "21:59"], ["05:59", "22:00", "23:30"]),
        ("22:00", "06:00", ["22:00", "23:59", "00:00", "05:59"], ["06:00", "12:00", "21:59"]),
        ("00:00", "24:00", ["00:00", "12:00", "23:59"], []),
        # Equal times mean open around the clock (24:00 is the same moment as 00:00).
        ("08:00", "08:00", ["00:00", "07:59", "08:00", "23:59"], []),
        ("00:00", "00:00", ["00:00", "23:59"], []),
        ("24:00", "00:00", ["00:00", "12:00", "23:59"], []),
    ],
)
def test_spans(opens: str, closes: str, open_at: list[str], closed_at: list[str]) -> None:
    for hhmm, expected in [*((t, True) for t in open_at), *((t, False) for t in closed_at)]:
        minute = parse_hhmm(hhmm)
        assert (
            open_at_minute(
                open_24h=False, opens=parse_hhmm(opens), closes=parse_hhmm(closes), minute=minute
            )
            is expected
        ), (opens, closes, hhmm)
        assert (
            is_open(status="active", open_24h=False, opens_at=opens, closes_at=closes, at=_at(hhmm))
            is expected
        )


def test_status_24h_and_missing_times() -> None:
    noon = _at("12:00")
    assert not is_open(status="paused", open_24h=True, opens_at=None, closes_at=None, at=noon)
    assert is_open(status="active", open_24h=True, opens_at=None, closes_at=None, at=noon)
    assert not is_open(status="active", open_24h=False, opens_at=None, closes_at="22:00", at=noon)
    assert not is_open(status="active", open_24h=False, opens_at="6:00", closes_at="22:00", at=noon)
    assert parse_hhmm("24:01") == NO_TIME


def test_the_index_applies_the_same_rule() -> None:
    from forecourt.search.index import PriceRows, SpatialIndex, StationColumns

    times = [None, "00:00", "06:00", "12:00", "22:00", "23:59", "24:00", "bad"]
    spans = [(o, c) for o in times for c in times]
    n = len(spans)
    index = SpatialIndex(
        stations=StationColumns(
            ids=list(range(1, n + 1)),
            lats=[25.0 + i * 1e-4 for i in range(n)],
            lngs=[102.7] * n,
            open_24h=[False] * n,
            opens_at=[o for o, _ in spans],
            closes_at=[c for _, c in spans],
        ),
        prices=PriceRows(station_ids=[], grades=[], effective=[], ids=[], price_fen=[]),
        built_at=0.0,
    )
    for minute in (0, 359, 360, 720, 1319, 1320, 1439):
        found = index.nearest(25.0, 102.7, k=n, radius_m=50_000, at=0.0, open_minute=minute)
        expected = {
            i + 1
            for i, (o, c) in enumerate(spans)
            if open_at_minute(
                open_24h=False, opens=parse_hhmm(o), closes=parse_hhmm(c), minute=minute
            )
        }
        assert {hit.station_id for hit in found} == expected, minute
        assert all(index.is_open(sid, minute) == (sid in expected) for sid in range(1, n + 1))
