"""In-process station snapshot: exact k nearest by haversine distance, cards and prices.

Positions. Stations are points on the unit sphere in a scipy ``cKDTree``; the straight-line
(chord) distance between unit vectors grows monotonically with the great-circle distance, so the
tree's nearest by chord are the nearest on the sphere. The tree only proposes candidates: each
is measured with the haversine formula (the arithmetic of `forecourt.kit.geo.haversine_m`),
sorted by (distance, station id), and the answer is accepted only when the last accepted
distance is strictly below what any station the tree did not return could have; otherwise the
candidate window grows. The result is the brute-force answer, ties included. One tree holds
every listed station, one per grade the stations with a price for that grade (now or later).

Prices. Per (station, grade) the snapshot keeps the price in force when it was built and every
later scheduled one, so the price "at" any later moment is exact without the database (the
rule of `forecourt.fuel.repository.current_prices`: newest effective, non-cancelled price, the
highest id on a tie).

The snapshot is immutable: a refresh builds a new one and swaps it in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import asin, cos, radians, sin, sqrt

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from forecourt.kit.geo import (
    EARTH_RADIUS_M,
    chord_for_distance,
    distance_for_chord,
    wgs84_to_gcj02,
)
from forecourt.station.hours import MINUTES_PER_DAY, NO_TIME, open_at_minute, parse_hhmm

_INF = math.inf
_SLACK_M = 1e-6
"""Metres subtracted from the chord-derived lower bound to absorb floating-point rounding."""
_GROWTH = 4
_DIAMETER_M = 2.0 * EARTH_RADIUS_M


@dataclass(frozen=True, slots=True)
class StationColumns:
    """Listed stations, one entry per station in each column (WGS-84 degrees).

    The card columns (code … services) may be left empty when only positions are needed.
    """

    ids: Sequence[int]
    lats: Sequence[float]
    lngs: Sequence[float]
    open_24h: Sequence[bool]
    opens_at: Sequence[str | None]
    closes_at: Sequence[str | None]
    codes: Sequence[str] = ()
    names: Sequence[str] = ()
    brands: Sequence[str] = ()
    addresses: Sequence[str] = ()
    phones: Sequence[str | None] = ()
    services: Sequence[Sequence[str]] = ()


@dataclass(frozen=True, slots=True)
class PriceRows:
    """Non-cancelled station prices, one entry per price in each column.

    Enough rows to answer from `built_at` on: per (station, grade) the newest one in force at
    `built_at` and every later one (older rows are ignored if given).
    """

    station_ids: Sequence[int]
    grades: Sequence[str]
    effective: Sequence[float]  # epoch seconds
    ids: Sequence[int]
    price_fen: Sequence[int]


@dataclass(frozen=True, slots=True)
class Hit:
    """One station found, with its haversine distance from the query point."""

    station_id: int
    distance_m: float


@dataclass(frozen=True, slots=True)
class Card:
    """What a search answer shows about one station (coordinates WGS-84)."""

    id: int
    code: str
    name: str
    brand: str
    address: str
    phone: str | None
    lat: float
    lng: float
    open_24h: bool
    opens_at: str | None
    closes_at: str | None
    services: Sequence[str] = field(default_factory=tuple)
    status: str = "active"


@dataclass(frozen=True, slots=True)
class _Tree:
    kd: cKDTree
    rows: list[int]
    size: int
    open_share: npt.NDArray[np.float64]


def unit_vectors(lats: npt.ArrayLike, lngs: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(n, 3) unit-sphere vectors for arrays of latitudes and longitudes in degrees."""
    p = np.radians(np.asarray(lats, dtype=np.float64))
    q = np.radians(np.asarray(lngs, dtype=np.float64))
    c = np.cos(p)
    return np.column_stack((c * np.cos(q), c * np.sin(q), np.sin(p)))


class SpatialIndex:
    """Exact nearest-station queries, station cards and prices over an immutable snapshot."""

    def __init__(
        self,
        *,
        stations: StationColumns,
        prices: PriceRows,
        built_at: float,
        grades: Sequence[tuple[str, str]] = (),
        version: object = None,
    ) -> None:
        self.version = version
        self.built_at = built_at
        self._ids = [int(v) for v in stations.ids]
        self._row_of = {sid: row for row, sid in enumerate(self._ids)}
        self._gcj: dict[int, tuple[float, float]] = {}
        self._lats = [float(v) for v in stations.lats]
        self._lngs = [float(v) for v in stations.lngs]
        self._open_24h = [bool(v) for v in stations.open_24h]
        self._opens_at = list(stations.opens_at)
        self._closes_at = list(stations.closes_at)
        parsed = {v: parse_hhmm(v) for v in {*self._opens_at, *self._closes_at}}
        self._opens = [parsed[v] for v in self._opens_at]
        self._closes = [parsed[v] for v in self._closes_at]
        # `open_at_minute` pre-decided per station for the query loop: always open (24 h, or
        # equal times), never (a time missing), else the span is checked inline.
        self._always = [
            bool(h) or (NO_TIME not in (o, c) and o % MINUTES_PER_DAY == c % MINUTES_PER_DAY)
            for h, o, c in zip(self._open_24h, self._opens, self._closes, strict=True)
        ]
        n = len(self._ids)
        self._codes = list(stations.codes) or [""] * n
        self._names = list(stations.names) or [""] * n
        self._brands = list(stations.brands) or [""] * n
        self._addresses = list(stations.addresses) or [""] * n
        self._phones = list(stations.phones) or [None] * n
        self._services = [tuple(s) for s in stations.services] or [()] * n
        known = dict(grades)
        self.grade_names: dict[str, str] = dict(known)
        self._load_prices(prices, list(known))
        xyz = unit_vectors(self._lats, self._lngs) if n else np.empty((0, 3))
        hours = (
            np.asarray(self._open_24h, dtype=bool),
            np.asarray(self._opens, dtype=np.int64),
            np.asarray(self._closes, dtype=np.int64),
        )
        self._trees: dict[str | None, _Tree] = {}
        if n:
            self._trees[None] = _tree(xyz, np.arange(n), hours)
        for grade, since in self._since_arrays.items():
            rows = np.flatnonzero(since != _INF)
            if len(rows):
                self._trees[grade] = _tree(xyz[rows], rows, hours)

    def _load_prices(self, prices: PriceRows, order: list[str]) -> None:
        """Keep per (station, grade) the price in force at `built_at` and every later one."""
        n = len(self._ids)
        for grade in dict.fromkeys(prices.grades):
            if grade not in order:
                order.append(grade)
                self.grade_names.setdefault(grade, grade)
        rank = {grade: i for i, grade in enumerate(order)}
        self._grade_order = order
        sid = np.asarray(prices.station_ids, dtype=np.int64)
        ids = np.asarray(self._ids, dtype=np.int64)
        by_id = np.argsort(ids)
        pos = np.minimum(np.searchsorted(ids[by_id], sid), max(n - 1, 0))
        rows = (
            np.where(ids[by_id][pos] == sid, by_id[pos], -1)
            if n
            else np.full(len(sid), -1, dtype=np.int64)
        )
        g = np.array([rank[x] for x in prices.grades], dtype=np.int64)
        eff = np.asarray(prices.effective, dtype=np.float64)
        pid = np.asarray(prices.ids, dtype=np.int64)
        fen = np.asarray(prices.price_fen, dtype=np.int64)
        listed = rows >= 0
        rows, g, eff, pid, fen = rows[listed], g[listed], eff[listed], pid[listed], fen[listed]
        by = np.lexsort((pid, eff, g, rows))
        rows, g, eff, pid, fen = rows[by], g[by], eff[by], pid[by], fen[by]
        key = rows * len(order) + g
        past = eff <= self.built_at
        same_next = np.append(key[1:] == key[:-1], False)
        past_next = np.append(past[1:], False)
        keep = ~past | ~(same_next & past_next)  # a past price only if the last one in force
        rows, g, eff, fen = rows[keep], g[keep], eff[keep], fen[keep]
        self._p_grade = [order[i] for i in g.tolist()]
        self._p_eff = eff.tolist()
        self._p_fen = fen.tolist()
        bounds = np.searchsorted(rows, np.arange(n + 1)).tolist()
        self._p_bounds = bounds
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (g[1:] != g[:-1])
        self._since_arrays: dict[str, npt.NDArray[np.float64]] = {}
        for gi in np.unique(g).tolist():
            since = np.full(n, _INF)
            pick = first & (g == gi)
            since[rows[pick]] = eff[pick]
            self._since_arrays[order[gi]] = since
        self._since = {grade: since.tolist() for grade, since in self._since_arrays.items()}
        self._latest = {
            grade: float(since[since != _INF].max()) for grade, since in self._since_arrays.items()
        }

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def grades(self) -> frozenset[str]:
        """Grades that at least one listed station has a price for (now or later)."""
        return frozenset(self._since)

    def card(self, station_id: int) -> Card | None:
        """The station's card, if it is listed."""
        row = self._row_of.get(station_id)
        if row is None:
            return None
        return Card(
            id=station_id,
            code=self._codes[row],
            name=self._names[row],
            brand=self._brands[row],
            address=self._addresses[row],
            phone=self._phones[row],
            lat=self._lats[row],
            lng=self._lngs[row],
            open_24h=self._open_24h[row],
            opens_at=self._opens_at[row],
            closes_at=self._closes_at[row],
            services=self._services[row],
        )

    def is_open(self, station_id: int, minute: int) -> bool:
        """Whether the listed station is open at a minute of the business day."""
        row = self._row_of[station_id]
        return open_at_minute(
            open_24h=self._open_24h[row],
            opens=self._opens[row],
            closes=self._closes[row],
            minute=minute,
        )

    def gcj02(self, station_id: int) -> tuple[float, float]:
        """The listed station's position in GCJ-02 (computed once per snapshot)."""
        cached = self._gcj.get(station_id)
        if cached is None:
            row = self._row_of[station_id]
            cached = self._gcj[station_id] = wgs84_to_gcj02(self._lats[row], self._lngs[row])
        return cached

    def prices_at(
        self, station_id: int, at: float, grade: str | None = None
    ) -> list[tuple[str, int]]:
        """(grade, fen per litre) in force at `at` (epoch seconds ≥ build time), display order."""
        row = self._row_of.get(station_id)
        if row is None:
            return []
        out: list[tuple[str, int]] = []
        current: str | None = None
        fen: int | None = None
        grades, effs, fens = self._p_grade, self._p_eff, self._p_fen
        for i in range(self._p_bounds[row], self._p_bounds[row + 1]):
            g = grades[i]
            if grade is not None and g != grade:
                continue
            if g != current:
                if current is not None and fen is not None:
                    out.append((current, fen))
                current, fen = g, None
            if effs[i] <= at:
                fen = fens[i]
        if current is not None and fen is not None:
            out.append((current, fen))
        return out

    def nearest(
        self,
        lat: float,
        lng: float,
        *,
        k: int,
        radius_m: float,
        at: float,
        grade: str | None = None,
        open_minute: int | None = None,
    ) -> list[Hit]:
        """The `k` nearest listed stations within `radius_m` of a WGS-84 point, nearest first.

        `grade` keeps stations with a price for that grade in force at `at` (epoch seconds);
        `open_minute` (minute of the business day) keeps stations open at that minute.
        """
        tree = self._trees.get(grade)
        if tree is None or k <= 0 or radius_m < 0:
            return []
        p1 = radians(lat)
        cos1 = cos(p1)
        q = (cos1 * cos(radians(lng)), cos1 * sin(radians(lng)), sin(p1))
        # Prices that start later than `at` only matter while some start is still ahead.
        since = self._since[grade] if grade is not None and self._latest[grade] > at else None
        share = 1.0 if open_minute is None else float(tree.open_share[open_minute])
        want = min(tree.size, k + 1 if share >= 1.0 else int((k + 1) / max(share, 0.01)) + 2)
        if since is not None:
            want = min(tree.size, want + k + 1)
        upper = chord_for_distance(radius_m) * (1.0 + 1e-9) + 1e-12
        ids, lats, lngs, rows = self._ids, self._lats, self._lngs, tree.rows
        always, opens, closes = self._always, self._opens, self._closes
        while True:
            res_c, res_p = tree.kd.query(q, k=want, distance_upper_bound=upper)
            if want == 1:
                chords, positions = [float(res_c)], [int(res_p)]
            else:
                chords, positions = res_c.tolist(), res_p.tolist()
            found: list[tuple[float, int]] = []
            exhausted = want >= tree.size
            last = 0.0
            for chord, pos in zip(chords, positions, strict=True):
                if chord == _INF:
                    exhausted = True
                    break
                last = chord
                row = rows[pos]
                if since is not None and since[row] > at:
                    continue
                if open_minute is not None and not always[row]:
                    o, c = opens[row], closes[row]  # open_at_minute, inlined
                    if o == NO_TIME or c == NO_TIME:
                        continue
                    if o < c:
                        if not o <= open_minute < c:
                            continue
                    elif not (open_minute >= o or open_minute < c):
                        continue
                # kit.geo.haversine_m inlined (same operations, so the same bits).
                p2 = radians(lats[row])
                h = (
                    sin((p2 - p1) / 2.0) ** 2
                    + cos1 * cos(p2) * sin(radians(lngs[row] - lng) / 2.0) ** 2
                )
                distance = _DIAMETER_M * asin(min(1.0, sqrt(h)))
                if distance <= radius_m:
                    found.append((distance, ids[row]))
            found.sort()
            if exhausted:
                return [Hit(sid, d) for d, sid in found[:k]]
            bound = distance_for_chord(last) - _SLACK_M
            if len(found) >= k:
                if found[k - 1][0] < bound:
                    return [Hit(sid, d) for d, sid in found[:k]]
            elif radius_m < bound:
                return [Hit(sid, d) for d, sid in found]
            want = min(tree.size, want * _GROWTH)


def _tree(
    xyz: npt.NDArray[np.float64],
    rows: npt.NDArray[np.int64],
    hours: tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> _Tree:
    open_24h, opens, closes = hours
    return _Tree(
        kd=cKDTree(xyz),
        rows=rows.tolist(),
        size=len(rows),
        open_share=_open_share(open_24h[rows], opens[rows], closes[rows]),
    )


def _open_share(
    open_24h: npt.ArrayLike, opens: npt.ArrayLike, closes: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """For each minute of the day, the share of the given stations open then."""
    o = np.asarray(opens, dtype=np.int64)
    n = len(o)
    if n == 0:
        return np.zeros(MINUTES_PER_DAY)
    c = np.asarray(closes, dtype=np.int64)
    always = np.asarray(open_24h, dtype=bool) | (
        (o >= 0) & (c >= 0) & (o % MINUTES_PER_DAY == c % MINUTES_PER_DAY)
    )
    known = ~always & (o >= 0) & (c >= 0)
    delta = np.zeros(MINUTES_PER_DAY + 1, dtype=np.int64)
    delta[0] += int(always.sum())
    day = known & (o < c)
    np.add.at(delta, o[day], 1)
    np.add.at(delta, c[day], -1)
    night = known & (o > c)
    np.add.at(delta, o[night], 1)
    delta[0] += int(night.sum())
    np.add.at(delta, c[night], -1)
    counts = np.cumsum(delta[:MINUTES_PER_DAY])
    share: npt.NDArray[np.float64] = counts / n
    return share
