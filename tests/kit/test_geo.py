"""Coordinate conversions against independent published implementations, and distances."""

from __future__ import annotations

import math
import random
from itertools import product

import eviltransform
import pytest
from coord_convert import transform as cc

from forecourt.kit import geo
from forecourt.kit.geo import CoordSystem

SYSTEMS: tuple[CoordSystem, ...] = ("wgs84", "gcj02", "bd09")


def _china_points(n: int, seed: int) -> list[tuple[float, float]]:
    rnd = random.Random(seed)
    points: list[tuple[float, float]] = []
    while len(points) < n:
        lat, lng = rnd.uniform(18.0, 53.5), rnd.uniform(73.5, 135.0)
        if not geo.out_of_china(lat, lng):
            points.append((lat, lng))
    return points


POINTS = _china_points(20_000, seed=11)
KUNMING = (25.04, 102.71)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return geo.haversine_m(a[0], a[1], b[0], b[1])


def test_wgs84_to_gcj02_matches_coord_convert_exactly() -> None:
    worst = 0.0
    for lat, lng in POINTS:
        ref_lng, ref_lat = cc.wgs2gcj(lng, lat)
        got = geo.wgs84_to_gcj02(lat, lng)
        worst = max(worst, abs(got[0] - ref_lat), abs(got[1] - ref_lng))
    assert worst < 1e-12


def test_wgs84_to_gcj02_matches_eviltransform_within_centimetres() -> None:
    # eviltransform scales by the WGS-84 semi-major axis instead of Krasovsky's: ~1 cm apart.
    worst = max(
        _metres(geo.wgs84_to_gcj02(lat, lng), eviltransform.wgs2gcj(lat, lng))
        for lat, lng in POINTS
    )
    assert worst < 0.05


def test_gcj02_to_wgs84_matches_both_references() -> None:
    worst_cc = worst_evil = 0.0
    for lat, lng in POINTS:
        got = geo.gcj02_to_wgs84(lat, lng)
        ref_lng, ref_lat = cc.gcj2wgs(lng, lat)
        worst_cc = max(worst_cc, _metres(got, (ref_lat, ref_lng)))
        # eviltransform's own inverse (bisection) does not always converge; its forward does.
        worst_evil = max(worst_evil, _metres((lat, lng), eviltransform.wgs2gcj(*got)))
    assert worst_cc < 0.01
    assert worst_evil < 0.05


def test_bd09_matches_both_references() -> None:
    worst_forward = worst_inverse = 0.0
    for lat, lng in POINTS:
        ref_lng, ref_lat = cc.gcj2bd(lng, lat)
        got = geo.gcj02_to_bd09(lat, lng)
        assert got == pytest.approx((ref_lat, ref_lng), abs=1e-12)
        worst_forward = max(worst_forward, _metres(got, eviltransform.gcj2bd(lat, lng)))
        # Ours is the exact inverse of the forward formula; the published one-shot inverse
        # used by both references is within ~0.2 m of it.
        back = geo.bd09_to_gcj02(lat, lng)
        ref_lng, ref_lat = cc.bd2gcj(lng, lat)
        worst_inverse = max(worst_inverse, _metres(back, (ref_lat, ref_lng)))
        worst_inverse = max(worst_inverse, _metres(back, eviltransform.bd2gcj(lat, lng)))
    assert worst_forward < 1e-6
    assert worst_inverse < 0.5


def test_wgs84_to_bd09_matches_both_references() -> None:
    for lat, lng in POINTS[:5000]:
        got = geo.wgs84_to_bd09(lat, lng)
        ref_lng, ref_lat = cc.wgs2bd(lng, lat)
        assert _metres(got, (ref_lat, ref_lng)) < 1e-6
        assert _metres(got, eviltransform.wgs2bd(lat, lng)) < 0.05


@pytest.mark.parametrize(("src", "dst"), [(a, b) for a, b in product(SYSTEMS, SYSTEMS) if a != b])
def test_round_trips_stay_under_half_a_metre(src: CoordSystem, dst: CoordSystem) -> None:
    worst = 0.0
    for lat, lng in POINTS:
        there = geo.convert(lat, lng, src, dst)
        back = geo.convert(there[0], there[1], dst, src)
        worst = max(worst, _metres((lat, lng), back))
    assert worst < 0.5
    assert worst < 0.001  # in fact far better: both inverses iterate to ~0.1 mm


def test_inverses_converge_to_their_tolerance() -> None:
    for lat, lng in POINTS[:5000]:
        glat, glng = geo.wgs84_to_gcj02(*geo.gcj02_to_wgs84(lat, lng))
        assert abs(glat - lat) < 1e-7
        assert abs(glng - lng) < 1e-7
        blat, blng = geo.gcj02_to_bd09(*geo.bd09_to_gcj02(lat, lng))
        assert abs(blat - lat) < 1e-7
        assert abs(blng - lng) < 1e-7


def test_kunming_offset_is_the_known_few_hundred_metres() -> None:
    gcj = geo.wgs84_to_gcj02(*KUNMING)
    assert gcj == pytest.approx((25.037024196433627, 102.7114371746248), abs=1e-12)
    assert 300 < _metres(KUNMING, gcj) < 400
    assert geo.convert(*KUNMING, "wgs84", "wgs84") == KUNMING


@pytest.mark.parametrize(
    "point",
    [(35.6812, 139.7671), (51.5072, -0.1276), (-33.8688, 151.2093), (0.5, 100.0), (56.0, 100.0)],
)
def test_outside_china_gcj02_is_wgs84(point: tuple[float, float]) -> None:
    assert geo.out_of_china(*point)
    assert geo.wgs84_to_gcj02(*point) == point
    assert geo.gcj02_to_wgs84(*point) == point
    assert geo.convert(*point, "wgs84", "gcj02") == point
    assert geo.convert(*point, "gcj02", "wgs84") == point
    ref_lng, ref_lat = cc.wgs2gcj(point[1], point[0])
    assert (ref_lat, ref_lng) == point


def test_china_rectangle_edges() -> None:
    assert not geo.out_of_china(0.8293, 72.004)
    assert not geo.out_of_china(55.8271, 137.8347)
    assert geo.out_of_china(0.8292, 100.0)
    assert geo.out_of_china(30.0, 137.8348)


def test_haversine_known_values() -> None:
    r = geo.EARTH_RADIUS_M
    assert geo.haversine_m(0, 0, 1, 0) == pytest.approx(r * math.pi / 180, rel=1e-12)
    assert geo.haversine_m(0, 0, 0, 180) == pytest.approx(r * math.pi, rel=1e-12)
    assert geo.haversine_m(10, 20, -10, -160) == pytest.approx(r * math.pi, rel=1e-7)
    assert geo.haversine_m(25.04, 102.71, 25.04, 102.71) == 0.0
    # 1e-7 degrees of latitude is about 1.1 cm: no precision lost at small distances.
    assert geo.haversine_m(25.0, 102.0, 25.0000001, 102.0) == pytest.approx(0.0111195, rel=1e-5)


def test_haversine_agrees_with_eviltransform_distance_scaled_to_our_radius() -> None:
    rnd = random.Random(5)
    for _ in range(2000):
        a, b = rnd.choice(POINTS), rnd.choice(POINTS)
        ours = geo.haversine_m(a[0], a[1], b[0], b[1])
        theirs = eviltransform.distance(a[0], a[1], b[0], b[1]) * geo.EARTH_RADIUS_M / 6378137.0
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-3)


def test_chord_and_distance_are_inverse() -> None:
    for d in (0.0, 0.01, 1.0, 1000.0, 50_000.0, 5_000_000.0):
        assert geo.distance_for_chord(geo.chord_for_distance(d)) == pytest.approx(d, abs=1e-6)
    x, y, z = geo.unit_vector(*KUNMING)
    assert x * x + y * y + z * z == pytest.approx(1.0, abs=1e-15)


def test_convert_rejects_unknown_system() -> None:
    with pytest.raises(ValueError, match="unknown coordinate system"):
        geo.convert(1.0, 2.0, "mercator", "wgs84")  # type: ignore[arg-type]
