"""Coordinate systems used in China (WGS-84, GCJ-02, BD-09) and great-circle distance.

Pure functions, no I/O. Every function takes and returns ``(lat, lng)`` in degrees, in that
order. The formulas are the ones in PROTOCOLS.md ("Coordinates and navigation"):

* WGS-84 → GCJ-02: Krasovsky ellipsoid (``a = 6378245.0``, ``ee = 0.00669342162296594323``)
  with the standard ``transformLat/transformLon`` polynomials at ``(lng − 105, lat − 35)``;
  no offset outside mainland China (the usual bounding rectangle, see `out_of_china`).
* GCJ-02 → WGS-84 inverts the forward transform by fixed-point iteration.
* GCJ-02 → BD-09: Baidu's published rotation/offset, applied everywhere as PROTOCOLS.md gives
  it; BD-09 → GCJ-02 starts from the usual published inverse and refines it by iteration.
"""

from __future__ import annotations

import math
from typing import Final, Literal, get_args

CoordSystem = Literal["wgs84", "gcj02", "bd09"]
COORD_SYSTEMS: Final[tuple[str, ...]] = get_args(CoordSystem)

EARTH_RADIUS_M: Final = 6371008.8
"""Mean Earth radius (IUGG R1) used for every distance the platform reports."""

KRASOVSKY_A: Final = 6378245.0
KRASOVSKY_EE: Final = 0.00669342162296594323
X_PI: Final = math.pi * 3000.0 / 180.0

INVERSE_TOLERANCE_DEG: Final = 1e-9
"""Inverse conversions iterate until the forward residual is below this (≈ 0.1 mm)."""
_GCJ_INVERSE_MAX_ITERATIONS: Final = 20
_BD_INVERSE_MAX_ITERATIONS: Final = 10


def out_of_china(lat: float, lng: float) -> bool:
    """True outside the rectangle where GCJ-02 applies an offset (WGS-84 passes through)."""
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj_offset(lat: float, lng: float) -> tuple[float, float]:
    """The GCJ-02 offset (dlat, dlng) in degrees at a WGS-84 point inside China."""
    dlat = _transform_lat(lng - 105.0, lat - 35.0)
    dlng = _transform_lng(lng - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlng = (dlng * 180.0) / (KRASOVSKY_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return dlat, dlng


def wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (identity outside China)."""
    if out_of_china(lat, lng):
        return lat, lng
    dlat, dlng = _gcj_offset(lat, lng)
    return lat + dlat, lng + dlng


def gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    """GCJ-02 → WGS-84 by fixed-point iteration on the forward transform (≤ 1e-9° residual)."""
    if out_of_china(lat, lng):
        return lat, lng
    wlat, wlng = lat, lng
    for _ in range(_GCJ_INVERSE_MAX_ITERATIONS):
        glat, glng = wgs84_to_gcj02(wlat, wlng)
        rlat, rlng = glat - lat, glng - lng
        if abs(rlat) < INVERSE_TOLERANCE_DEG and abs(rlng) < INVERSE_TOLERANCE_DEG:
            break
        wlat -= rlat
        wlng -= rlng
    return wlat, wlng


def gcj02_to_bd09(lat: float, lng: float) -> tuple[float, float]:
    """GCJ-02 → BD-09 (Baidu)."""
    x, y = lng, lat
    z = math.sqrt(x * x + y * y) + 0.00002 * math.sin(y * X_PI)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    """BD-09 → GCJ-02: the published inverse, refined until `gcj02_to_bd09` gives the input back.

    The one-shot published inverse is off by up to about 0.2 m; a few fixed-point steps on the
    forward formula make the round trip exact to ≈ 0.1 mm.
    """
    x, y = lng - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * X_PI)
    glat, glng = z * math.sin(theta), z * math.cos(theta)
    for _ in range(_BD_INVERSE_MAX_ITERATIONS):
        blat, blng = gcj02_to_bd09(glat, glng)
        rlat, rlng = blat - lat, blng - lng
        if abs(rlat) < INVERSE_TOLERANCE_DEG and abs(rlng) < INVERSE_TOLERANCE_DEG:
            break
        glat -= rlat
        glng -= rlng
    return glat, glng


def wgs84_to_bd09(lat: float, lng: float) -> tuple[float, float]:
    """WGS-84 → BD-09 through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lng))


def bd09_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    """BD-09 → WGS-84 through GCJ-02."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lng))


def convert(lat: float, lng: float, src: CoordSystem, dst: CoordSystem) -> tuple[float, float]:
    """Convert a point between any two of wgs84, gcj02 and bd09."""
    if src == dst:
        return lat, lng
    if src == "wgs84":
        gcj = wgs84_to_gcj02(lat, lng)
        return gcj if dst == "gcj02" else gcj02_to_bd09(*gcj)
    if src == "gcj02":
        return gcj02_to_wgs84(lat, lng) if dst == "wgs84" else gcj02_to_bd09(lat, lng)
    if src == "bd09":
        gcj = bd09_to_gcj02(lat, lng)
        return gcj if dst == "gcj02" else gcj02_to_wgs84(*gcj)
    raise ValueError(f"unknown coordinate system {src!r}")


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres on a sphere of radius `EARTH_RADIUS_M` (haversine)."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2.0) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def chord_for_distance(distance_m: float) -> float:
    """Straight-line distance between two unit-sphere points `distance_m` apart on the surface."""
    angle = min(distance_m / EARTH_RADIUS_M, math.pi)
    return 2.0 * math.sin(angle / 2.0)


def distance_for_chord(chord: float) -> float:
    """Great-circle distance in metres for a chord between two unit-sphere points."""
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, chord / 2.0))


def unit_vector(lat: float, lng: float) -> tuple[float, float, float]:
    """The point on the unit sphere (x, y, z) for a latitude and longitude in degrees."""
    p = math.radians(lat)
    q = math.radians(lng)
    c = math.cos(p)
    return c * math.cos(q), c * math.sin(q), math.sin(p)
