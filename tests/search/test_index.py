"""The in-process index gives exactly the brute-force answer (no database)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from forecourt.search.index import Hit, PriceRows, SpatialIndex, StationColumns, _open_share
from forecourt.station.hours import open_at_minute as is_open
from forecourt.station.hours import parse_hhmm
from tests.search import bruteforce

GRADES = ("92", "95", "98", "0", "-10")
AT = 1_800_000_000.0
CENTRES = ((25.04, 102.71), (39.90, 116.40), (31.23, 121.47), (23.13, 113.26), (43.82, 87.62))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _world(n: int, seed: int) -> tuple[bruteforce.Stations, SpatialIndex]:
    """Random stations: clustered, some uniform, some sharing a position (ties)."""
    rnd = random.Random(seed)
    lat: list[float] = []
    lng: list[float] = []
    for i in range(n):
        if i > 50 and rnd.random() < 0.03:  # an exact duplicate position: distance ties
            j = rnd.randrange(len(lat))
            lat.append(lat[j])
            lng.append(lng[j])
        elif rnd.random() < 0.8:
            c = rnd.choice(CENTRES)
            lat.append(c[0] + rnd.gauss(0, 0.15))
            lng.append(c[1] + rnd.gauss(0, 0.15))
        else:
            lat.append(rnd.uniform(20, 50))
            lng.append(rnd.uniform(75, 130))
    ids = rnd.sample(range(1, 10 * n), n)
    listed = [rnd.random() < 0.9 for _ in range(n)]
    open_24h = [rnd.random() < 0.5 for _ in range(n)]
    opens = [rnd.choice([-1, rnd.randrange(1440)]) if not o else -1 for o in open_24h]
    closes = [rnd.randrange(1440) if o >= 0 else -1 for o in opens]
    since: dict[str, list[float]] = {}
    p_ids: list[int] = []
    p_grades: list[str] = []
    p_starts: list[float] = []
    for grade, share in zip(GRADES, (0.95, 0.9, 0.4, 0.6, 0.1), strict=True):
        since[grade] = [math.inf] * n
        for row in range(n):
            if rnd.random() < share:
                for _ in range(rnd.choice((1, 1, 2))):  # several prices: the earliest counts
                    start = AT + rnd.choice((-1.0, 1.0)) * rnd.uniform(0, 86400 * 30)
                    since[grade][row] = min(since[grade][row], start)
                    p_ids.append(ids[row])
                    p_grades.append(grade)
                    p_starts.append(start)
    world = bruteforce.Stations(
        ids=np.array(ids, dtype=np.int64),
        lat=np.array(lat),
        lng=np.array(lng),
        listed=np.array(listed),
        open_24h=np.array(open_24h),
        opens=np.array(opens, dtype=np.int64),
        closes=np.array(closes, dtype=np.int64),
        since={g: np.array(v) for g, v in since.items()},
    )
    rows = [r for r in range(n) if listed[r]]
    index = SpatialIndex(
        stations=StationColumns(
            ids=[ids[r] for r in rows],
            lats=[lat[r] for r in rows],
            lngs=[lng[r] for r in rows],
            open_24h=[open_24h[r] for r in rows],
            opens_at=[_hhmm(opens[r]) if opens[r] >= 0 else None for r in rows],
            closes_at=[_hhmm(closes[r]) if closes[r] >= 0 else None for r in rows],
        ),
        prices=PriceRows(
            station_ids=p_ids,
            grades=p_grades,
            effective=p_starts,
            ids=list(range(1, len(p_ids) + 1)),
            price_fen=[800] * len(p_ids),
        ),
        built_at=AT - 86400 * 40,
    )
    return world, index


def _as_pairs(hits: list[Hit]) -> list[tuple[int, float]]:
    return [(h.station_id, h.distance_m) for h in hits]


def test_index_equals_brute_force_on_twelve_thousand_random_queries() -> None:
    world, index = _world(4000, seed=1)
    rnd = random.Random(2)
    compared = nonempty = items = 0
    for _ in range(12_000):
        roll = rnd.random()
        if roll < 0.5:  # near a station, as drivers are
            row = rnd.randrange(len(world.ids))
            lat, lng = world.lat[row] + rnd.gauss(0, 0.01), world.lng[row] + rnd.gauss(0, 0.01)
        elif roll < 0.9:
            c = rnd.choice(CENTRES)
            lat, lng = c[0] + rnd.gauss(0, 0.3), c[1] + rnd.gauss(0, 0.3)
        else:
            lat, lng = rnd.uniform(18, 54), rnd.uniform(73, 135)
        k = rnd.choice((1, 2, 5, 10, 10, 20, 50))
        radius = math.exp(rnd.uniform(math.log(200), math.log(50_000)))
        grade = rnd.choice((None, None, *GRADES, "E10"))
        minute = rnd.choice((None, None, rnd.randrange(1440)))
        at = AT + rnd.uniform(-86400 * 20, 86400 * 20)
        got = index.nearest(lat, lng, k=k, radius_m=radius, at=at, grade=grade, open_minute=minute)
        want = bruteforce.nearest(
            world, lat, lng, k=k, radius_m=radius, at=at, grade=grade, open_minute=minute
        )
        assert [h.station_id for h in got] == [sid for sid, _ in want], (lat, lng, k, radius)
        for (_, d_got), (_, d_want) in zip(_as_pairs(got), want, strict=True):
            assert d_got == pytest.approx(d_want, rel=1e-12, abs=1e-6)
        compared += 1
        nonempty += bool(want)
        items += len(want)
    assert compared == 12_000
    assert nonempty > 4000  # the rest: tight radius, rare or unknown grade, closed hours
    assert items > 25_000


def _small(
    points: list[tuple[int, float, float]], **prices: list[tuple[int, float]]
) -> SpatialIndex:
    p_ids = [sid for plist in prices.values() for sid, _ in plist]
    p_grades = [g for g, plist in prices.items() for _ in plist]
    p_starts = [start for plist in prices.values() for _, start in plist]
    return SpatialIndex(
        stations=StationColumns(
            ids=[p[0] for p in points],
            lats=[p[1] for p in points],
            lngs=[p[2] for p in points],
            open_24h=[True] * len(points),
            opens_at=[None] * len(points),
            closes_at=[None] * len(points),
        ),
        prices=PriceRows(
            station_ids=p_ids,
            grades=p_grades,
            effective=p_starts,
            ids=list(range(1, len(p_ids) + 1)),
            price_fen=[800] * len(p_ids),
        ),
        built_at=AT - 86400,
    )


def test_ties_are_broken_by_station_id() -> None:
    same = [(sid, 25.05, 102.72) for sid in (9, 3, 7, 5, 1, 8)]
    index = _small([*same, (2, 25.06, 102.72)])
    hits = index.nearest(25.04, 102.71, k=4, radius_m=10_000, at=AT)
    assert [h.station_id for h in hits] == [1, 3, 5, 7]
    assert len({h.distance_m for h in hits}) == 1
    assert [h.station_id for h in index.nearest(25.05, 102.72, k=7, radius_m=10, at=AT)] == [
        1,
        3,
        5,
        7,
        8,
        9,
    ]


def test_radius_limit_and_empty_cases() -> None:
    index = _small([(1, 25.04, 102.71), (2, 25.05, 102.71), (3, 26.04, 102.71)])
    hits = index.nearest(25.04, 102.71, k=10, radius_m=5000, at=AT)
    assert [h.station_id for h in hits] == [1, 2]
    assert hits[0].distance_m == 0.0
    assert hits[1].distance_m == pytest.approx(1111.95, abs=0.01)
    assert index.nearest(25.04, 102.71, k=10, radius_m=1111.9, at=AT) == [Hit(1, 0.0)]
    assert len(index.nearest(25.04, 102.71, k=10, radius_m=200_000, at=AT)) == 3
    assert index.nearest(25.04, 102.71, k=10, radius_m=5000, at=AT, grade="95") == []
    empty = _small([])
    assert len(empty) == 0
    assert empty.nearest(25.04, 102.71, k=10, radius_m=5000, at=AT) == []
    single = _small([(4, 25.04, 102.71)])
    assert single.nearest(25.0, 102.7, k=1, radius_m=50_000, at=AT)[0].station_id == 4


def test_grade_filter_uses_the_earliest_live_price() -> None:
    index = _small(
        [(1, 25.04, 102.71), (2, 25.05, 102.71)],
        **{"95": [(1, AT + 60), (1, AT + 3600), (2, AT - 60)]},
    )
    assert index.grades == frozenset({"95"})
    before = index.nearest(25.04, 102.71, k=5, radius_m=5000, at=AT, grade="95")
    assert [h.station_id for h in before] == [2]
    after = index.nearest(25.04, 102.71, k=5, radius_m=5000, at=AT + 60, grade="95")
    assert [h.station_id for h in after] == [1, 2]


def test_open_filter_grows_the_window_past_closed_stations() -> None:
    closed = [(i, 25.04 + i * 1e-4, 102.71) for i in range(1, 60)]
    index = SpatialIndex(
        stations=StationColumns(
            ids=[*(c[0] for c in closed), 100],
            lats=[*(c[1] for c in closed), 25.2],
            lngs=[*(c[2] for c in closed), 102.71],
            open_24h=[False] * 59 + [True],
            opens_at=["08:00"] * 59 + [None],
            closes_at=["09:00"] * 59 + [None],
        ),
        prices=PriceRows(station_ids=[], grades=[], effective=[], ids=[], price_fen=[]),
        built_at=AT,
    )
    hits = index.nearest(25.04, 102.71, k=2, radius_m=50_000, at=AT, open_minute=12 * 60)
    assert [h.station_id for h in hits] == [100]
    at_8 = index.nearest(25.04, 102.71, k=2, radius_m=50_000, at=AT, open_minute=8 * 60)
    assert [h.station_id for h in at_8] == [1, 2]


@pytest.mark.parametrize(
    ("opens", "closes", "open_minutes"),
    [
        ("06:00", "22:00", {360, 1319}),
        ("22:00", "06:00", {1320, 0, 359}),
        ("00:00", "24:00", {0, 1439}),
    ],
)
def test_hours(opens: str, closes: str, open_minutes: set[int]) -> None:
    o, c = parse_hhmm(opens), parse_hhmm(closes)
    for minute in open_minutes:
        assert is_open(open_24h=False, opens=o, closes=c, minute=minute)
    assert not is_open(open_24h=False, opens=o, closes=c, minute=(c % 1440)) or o == c % 1440


def test_hours_match_the_station_area_rules() -> None:
    from datetime import UTC, datetime, timedelta

    from forecourt.station.hours import is_open as station_is_open

    rnd = random.Random(3)
    base = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # local midnight in Asia/Shanghai
    for _ in range(3000):
        o, c = rnd.randrange(1440), rnd.randrange(1440)
        minute = rnd.randrange(1440)
        mine = is_open(open_24h=False, opens=o, closes=c, minute=minute)
        theirs = station_is_open(
            status="active",
            open_24h=False,
            opens_at=_hhmm(o),
            closes_at=_hhmm(c),
            at=base + timedelta(minutes=minute),
        )
        assert mine == theirs


@pytest.mark.parametrize("bad", [None, "", "6:00", "25:00", "12:60", "ab:cd", "24:01"])
def test_unreadable_hours_are_closed(bad: str | None) -> None:
    assert parse_hhmm(bad) == -1
    assert not is_open(open_24h=False, opens=parse_hhmm(bad), closes=600, minute=300)


def test_prices_follow_the_current_price_rule() -> None:
    # Newest effective price wins, the higher id on a tie; older history is dropped at build.
    rows = [
        # (station, grade, effective, id, fen)
        (1, "95", AT - 7200, 1, 800),
        (1, "95", AT - 3600, 2, 810),
        (1, "95", AT - 3600, 3, 815),  # same moment, higher id: this one
        (1, "95", AT + 3600, 4, 790),  # scheduled
        (1, "92", AT + 60, 5, 750),  # only scheduled
        (2, "0", AT - 60, 6, 700),
        (9, "95", AT - 60, 7, 999),  # not a listed station: ignored
    ]
    index = SpatialIndex(
        stations=StationColumns(
            ids=[2, 1],
            lats=[25.0, 25.1],
            lngs=[102.0, 102.1],
            open_24h=[True, True],
            opens_at=[None, None],
            closes_at=[None, None],
            codes=["B", "A"],
            names=["乙", "甲"],
            brands=["x", "y"],
            addresses=["b", "a"],
            phones=[None, "1"],
            services=[(), ("shop",)],
        ),
        prices=PriceRows(
            station_ids=[r[0] for r in rows],
            grades=[r[1] for r in rows],
            effective=[r[2] for r in rows],
            ids=[r[3] for r in rows],
            price_fen=[r[4] for r in rows],
        ),
        built_at=AT,
        grades=[("92", "92#"), ("95", "95#"), ("0", "0#")],
    )
    assert index.prices_at(1, AT) == [("95", 815)]
    assert index.prices_at(1, AT + 60) == [("92", 750), ("95", 815)]
    assert index.prices_at(1, AT + 3600) == [("92", 750), ("95", 790)]
    assert index.prices_at(1, AT + 3600, "95") == [("95", 790)]
    assert index.prices_at(2, AT) == [("0", 700)]
    assert index.prices_at(9, AT) == []
    assert index.grades == frozenset({"92", "95", "0"})
    assert [
        h.station_id for h in index.nearest(25.1, 102.1, k=5, radius_m=50_000, at=AT, grade="92")
    ] == []
    assert [
        h.station_id
        for h in index.nearest(25.1, 102.1, k=5, radius_m=50_000, at=AT + 60, grade="92")
    ] == [1]
    card = index.card(1)
    assert card is not None
    assert (card.code, card.name, card.phone, card.services) == ("A", "甲", "1", ("shop",))
    assert index.card(9) is None


def test_open_share_counts_open_stations_per_minute() -> None:
    rnd = random.Random(4)
    n = 500
    open_24h = [rnd.random() < 0.3 for _ in range(n)]
    opens = [rnd.choice([-1, rnd.randrange(1441)]) for _ in range(n)]
    closes = [rnd.choice([-1, rnd.randrange(1441)]) for _ in range(n)]
    share = _open_share(open_24h, opens, closes)
    for minute in range(0, 1440, 7):
        expected = sum(
            is_open(open_24h=a, opens=o, closes=c, minute=minute)
            for a, o, c in zip(open_24h, opens, closes, strict=True)
        )
        assert share[minute] == pytest.approx(expected / n)
