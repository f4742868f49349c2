"""Tank request and response models (volumes in ml, times UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Availability = Literal["in_stock", "low", "out", "unknown"]
MAX_ML = 10**12  # 1,000,000 m³: far above any tank, far below 2**53
GRADE_CODE = r"^[A-Za-z0-9+-]{1,8}$"
CLIENT_REF = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,47}$"

Ml = Field(ge=0, le=MAX_ML)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_thresholds(capacity: int, low: int, out: int) -> None:
    if low > capacity:
        raise ValueError("low_ml must not exceed capacity_ml")
    if out > low:
        raise ValueError("out_ml must not exceed low_ml")


class TankIn(_Strict):
    """A tank to add to a station, with its opening book stock."""

    number: int = Field(ge=1, le=9999, examples=[1])
    grade: str = Field(pattern=GRADE_CODE, examples=["92"])
    capacity_ml: int = Field(ge=1, le=MAX_ML, examples=[30_000_000])
    low_ml: int = Field(default=0, ge=0, le=MAX_ML, examples=[3_000_000])
    out_ml: int = Field(default=0, ge=0, le=MAX_ML, examples=[500_000])
    variance_alert_ml: int = Field(default=200_000, ge=1, le=MAX_ML)
    opening_ml: int = Field(default=0, ge=0, le=MAX_ML, description="book stock at opening_at")
    opening_at: AwareDatetime | None = Field(default=None, description="default: now")
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> TankIn:
        _check_thresholds(self.capacity_ml, self.low_ml, self.out_ml)
        if self.opening_ml > self.capacity_ml:
            raise ValueError("opening_ml must not exceed capacity_ml")
        return self


class TankUpdate(_Strict):
    """Changes to a tank's size, thresholds or state (the grade cannot change)."""

    capacity_ml: int | None = Field(default=None, ge=1, le=MAX_ML)
    low_ml: int | None = Field(default=None, ge=0, le=MAX_ML)
    out_ml: int | None = Field(default=None, ge=0, le=MAX_ML)
    variance_alert_ml: int | None = Field(default=None, ge=1, le=MAX_ML)
    active: bool | None = None


class DeliveryIn(_Strict):
    """A delivery entered by staff; `client_ref` makes a retry harmless."""

    client_ref: str = Field(pattern=CLIENT_REF, examples=["20260501-dn-0042"])
    volume_ml: int = Field(ge=1, le=MAX_ML, examples=[20_000_000])
    delivered_at: AwareDatetime = Field(description="when the delivery ended")
    note: str | None = Field(default=None, max_length=200)


class ReconcileIn(_Strict):
    """Reset book stock to the latest measured stock."""

    note: str | None = Field(default=None, max_length=200)


class TankOut(BaseModel):
    """A tank's configuration and its stock (staff)."""

    number: int
    grade: str
    capacity_ml: int
    low_ml: int
    out_ml: int
    variance_alert_ml: int
    active: bool
    measured_ml: int | None = Field(description="latest gauge reading")
    measured_at: datetime | None
    level_mm: int | None
    water_mm: int | None
    temperature_c: float | None
    book_ml: int = Field(description="book stock now: opening + deliveries - sales since then")
    book_since: datetime
    book_at_measured_ml: int | None = Field(description="book stock at the latest reading")
    variance_ml: int | None = Field(description="measured - book at the latest reading")
    variance_alert: bool = Field(description="|variance_ml| > variance_alert_ml")
    availability: Availability = Field(description="this tank alone against its thresholds")


class DeliveryOut(BaseModel):
    """A delivery into a tank, or a reconciliation (source `reconcile`, signed volume)."""

    id: int
    tank: int
    ref: str
    source: Literal["gauge", "staff", "reconcile"]
    volume_ml: int
    started_at: datetime | None
    ended_at: datetime
    entered_by: int | None
    note: str | None
    created_at: datetime


class DeliveryResult(DeliveryOut):
    """A recorded delivery; `replayed` when the same `client_ref` was already recorded."""

    replayed: bool


class ReadingOut(BaseModel):
    """One gauge reading with the book stock at that moment."""

    measured_at: datetime
    volume_ml: int
    book_ml: int
    variance_ml: int
    level_mm: int | None
    water_mm: int | None
    temperature_c: float | None
    event_seq: int | None


class GradeAvailability(BaseModel):
    """Whether a grade can be bought at a station (no volumes)."""

    grade: str
    availability: Availability


class StationAvailability(BaseModel):
    """Public stock signal per grade."""

    station_id: int
    grades: list[GradeAvailability]
