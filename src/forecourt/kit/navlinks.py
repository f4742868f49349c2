"""Navigation deep links for AMap (高德), Tencent Maps and Baidu Maps. Pure string building.

Every coordinate passed in is GCJ-02 (what AMap and Tencent use; Baidu is told so with
``coord_type=gcj02``). Names are percent-encoded. Formats follow PROTOCOLS.md for AMap and the
providers' URI API documentation for Tencent (``/uri/v1/routeplan``) and Baidu (``/direction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

SOURCE = "forecourt"


@dataclass(frozen=True, slots=True)
class NavLinks:
    """Deep links that start turn-by-turn navigation to one destination."""

    amap_web: str
    amap_app: str
    tencent: str
    baidu: str


@lru_cache(maxsize=65536)
def _q(value: str) -> str:
    """Percent-encode everything but unreserved characters (station names repeat: cached)."""
    return quote(value, safe="")


def _deg(value: float) -> str:
    return f"{value:.6f}"


def amap_web(*, lat: float, lng: float, name: str, src: str = SOURCE) -> str:
    """AMap web navigation URI (opens the app when installed: callnative=1)."""
    return (
        f"https://uri.amap.com/navigation?to={_deg(lng)},{_deg(lat)},{_q(name)}"
        f"&mode=car&src={_q(src)}&coordinate=gaode&callnative=1"
    )


def amap_app(*, lat: float, lng: float, name: str) -> str:
    """AMap app route-planning URI (dev=0: the coordinates are already GCJ-02)."""
    return f"amapuri://route/plan/?dlat={_deg(lat)}&dlon={_deg(lng)}&dname={_q(name)}&dev=0&t=0"


def tencent(*, lat: float, lng: float, name: str, referer: str = SOURCE) -> str:
    """Tencent Maps driving route URI (from the current location)."""
    return (
        f"https://apis.map.qq.com/uri/v1/routeplan?type=drive&to={_q(name)}"
        f"&tocoord={_deg(lat)},{_deg(lng)}&referer={_q(referer)}"
    )


def baidu(
    *,
    lat: float,
    lng: float,
    name: str,
    origin: tuple[float, float] | None = None,
    src: str = SOURCE,
) -> str:
    """Baidu Maps driving directions URI with GCJ-02 input (origin: the user's GCJ-02 point)."""
    start = "" if origin is None else f"origin={_baidu_place(origin[0], origin[1], '我的位置')}&"
    return (
        f"https://api.map.baidu.com/direction?{start}"
        f"destination={_baidu_place(lat, lng, name)}"
        f"&mode=driving&coord_type=gcj02&output=html&src={_q(src)}"
    )


@lru_cache(maxsize=65536)
def _baidu_place(lat: float, lng: float, name: str) -> str:
    return f"latlng%3A{_deg(lat)}%2C{_deg(lng)}%7Cname%3A{_q(name)}"


def destination_links(*, lat: float, lng: float, name: str) -> tuple[str, str, str]:
    """(amap_web, amap_app, tencent) to a GCJ-02 destination: the links without an origin.

    The same strings as `amap_web`, `amap_app` and `tencent`, with the coordinates and the name
    formatted once (search answers build these for every station they list).
    """
    la, ln, q, src = _deg(lat), _deg(lng), _q(name), _q(SOURCE)
    return (
        f"https://uri.amap.com/navigation?to={ln},{la},{q}"
        f"&mode=car&src={src}&coordinate=gaode&callnative=1",
        f"amapuri://route/plan/?dlat={la}&dlon={ln}&dname={q}&dev=0&t=0",
        f"https://apis.map.qq.com/uri/v1/routeplan?type=drive&to={q}"
        f"&tocoord={la},{ln}&referer={src}",
    )


def nav_links(
    *, lat: float, lng: float, name: str, origin: tuple[float, float] | None = None
) -> NavLinks:
    """All navigation links to a GCJ-02 destination (`origin`, if known, also GCJ-02)."""
    return NavLinks(
        amap_web=amap_web(lat=lat, lng=lng, name=name),
        amap_app=amap_app(lat=lat, lng=lng, name=name),
        tencent=tencent(lat=lat, lng=lng, name=name),
        baidu=baidu(lat=lat, lng=lng, name=name, origin=origin),
    )
