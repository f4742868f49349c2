"""Request and response models for nearby search and coordinate conversion."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from forecourt.kit.geo import CoordSystem

MAX_RADIUS_M = 50_000
MAX_LIMIT = 50


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NearbyQuery(_Strict):
    """Query string of GET /stations/nearby."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="latitude, degrees")
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False, description="longitude, degrees")
    coord: CoordSystem = Field(
        default="gcj02",
        description="system of lat/lng and of the station coordinates returned "
        "(wx.getLocation gives gcj02, browsers wgs84)",
    )
    radius_m: int = Field(default=10_000, ge=1, le=MAX_RADIUS_M, description="metres")
    grade: str | None = Field(
        default=None, min_length=1, max_length=8, description="only stations selling this grade"
    )
    open_now: bool = Field(default=False, description="only stations open at this moment")
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)


class ConvertQuery(_Strict):
    """Query string of GET /geo/convert."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)
    from_: CoordSystem = Field(alias="from")
    to: CoordSystem


class Point(_Strict):
    """A point in a named coordinate system."""

    lat: float
    lng: float
    coord: CoordSystem


class GradePrice(_Strict):
    """A grade's current list price at a station."""

    grade: str
    name: str
    price_fen: int = Field(description="fen per litre")
    price_yuan: str = Field(description='yuan per litre, two decimals ("8.20")')


class NavLinksOut(_Strict):
    """Deep links that start navigation to the station (GCJ-02 coordinates inside)."""

    amap_web: str
    amap_app: str
    tencent: str
    baidu: str


class NearbyStation(_Strict):
    """One station in a nearby search answer."""

    id: int
    code: str
    name: str
    brand: str
    address: str
    lat: float
    lng: float
    coord: CoordSystem
    distance_m: float = Field(description="great-circle (haversine) metres, 0.1 m")
    open_now: bool
    open_24h: bool
    opens_at: str | None
    closes_at: str | None
    services: list[str]
    phone: str | None
    grade: str | None = Field(description="the requested grade, if any")
    price_fen: int | None = Field(description="the requested grade's price, fen per litre")
    price_yuan: str | None
    prices: list[GradePrice] = Field(
        description="current prices: the requested grade only, or every grade sold"
    )
    availability: str = Field(
        description=(
            'stock of the requested grade from the tank gauges: "in_stock", "low", "out";'
            ' "unknown" when no grade is requested or the station has no tank for it'
        )
    )
    nav: NavLinksOut


class NearbyPage(_Strict):
    """Nearby search answer: stations sorted by (distance, id)."""

    items: list[NearbyStation]
    origin: Point
    radius_m: int
    count: int
