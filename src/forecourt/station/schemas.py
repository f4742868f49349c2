"""Station request and response models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Coord = Literal["wgs84", "gcj02", "bd09"]
Service = Literal["car_wash", "shop", "toilet", "ev_charging", "air_pump", "restaurant", "atm"]
Status = Literal["active", "paused", "closed"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_hhmm(value: str | None) -> str | None:
    if value is not None and not _HHMM.match(value):
        raise ValueError("must be HH:MM (00:00-23:59)")
    return value


class Hours(_Strict):
    """Opening hours: 24 h, or a daily span that may cross midnight."""

    open_24h: bool = False
    opens_at: str | None = Field(default=None, examples=["06:00"])
    closes_at: str | None = Field(default=None, examples=["22:00"])

    _hhmm = field_validator("opens_at", "closes_at")(_check_hhmm)

    @model_validator(mode="after")
    def _complete(self) -> Hours:
        if not self.open_24h and (self.opens_at is None or self.closes_at is None):
            raise ValueError("opens_at and closes_at are required unless open_24h is true")
        if not self.open_24h and self.opens_at == self.closes_at:
            raise ValueError("opens_at and closes_at must differ (use open_24h)")
        return self


class StationCreate(_Strict):
    """A new station; coordinates in `coord` (default GCJ-02, as AMap and WeChat give them)."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=100)
    brand: str = Field(min_length=1, max_length=40)
    address: str = Field(min_length=1, max_length=200)
    province: str = Field(min_length=2, max_length=20)
    city: str = Field(min_length=2, max_length=40)
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    coord: Coord = "gcj02"
    phone: str | None = Field(default=None, max_length=30)
    hours: Hours
    services: list[Service] = Field(default_factory=list, max_length=10)
    status: Status = "active"


class StationUpdate(_Strict):
    """Changes to a station; only the fields given are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    brand: str | None = Field(default=None, min_length=1, max_length=40)
    address: str | None = Field(default=None, min_length=1, max_length=200)
    province: str | None = Field(default=None, min_length=2, max_length=20)
    city: str | None = Field(default=None, min_length=2, max_length=40)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    coord: Coord = "gcj02"
    phone: str | None = Field(default=None, max_length=30)
    hours: Hours | None = None
    services: list[Service] | None = Field(default=None, max_length=10)
    status: Status | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> StationUpdate:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng must be given together")
        return self


class GradePrice(BaseModel):
    """The price in force for one grade."""

    grade: str
    price_fen: int
    price_yuan: str
    effective_at: datetime


class StationOut(BaseModel):
    """A station as clients see it, with coordinates in `coord`."""

    id: int
    code: str
    name: str
    brand: str
    address: str
    province: str
    city: str
    lat: float
    lng: float
    coord: Coord
    phone: str | None
    open_24h: bool
    opens_at: str | None
    closes_at: str | None
    open_now: bool
    services: list[str]
    status: Status
    prices: list[GradePrice]
    updated_at: datetime


class StationPage(BaseModel):
    """A page of stations."""

    items: list[StationOut]
    total: int
    offset: int
    limit: int
