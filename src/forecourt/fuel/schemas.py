"""Grade, price and cap request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

GRADE_CODE = r"^-?[0-9]{1,3}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GradeIn(_Strict):
    """A grade to add (head office)."""

    code: str = Field(pattern=GRADE_CODE, examples=["95"])
    name: str = Field(min_length=1, max_length=40, examples=["95#汽油"])
    kind: Literal["petrol", "diesel"]
    sort_order: int = Field(default=0, ge=0, le=10_000)
    active: bool = True


class GradeUpdate(_Strict):
    """Changes to a grade."""

    name: str | None = Field(default=None, min_length=1, max_length=40)
    sort_order: int | None = Field(default=None, ge=0, le=10_000)
    active: bool | None = None


class GradeOut(BaseModel):
    """A grade."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    sort_order: int
    active: bool


class CapIn(_Strict):
    """A provincial maximum retail price from a moment on."""

    province: str = Field(min_length=2, max_length=20)
    grade: str = Field(pattern=GRADE_CODE)
    cap_fen: int = Field(gt=0, le=100_000, description="fen per litre")
    effective_at: AwareDatetime | None = Field(default=None, description="default: now")


class CapOut(BaseModel):
    """A cap."""

    id: int
    province: str
    grade: str
    cap_fen: int
    cap_yuan: str
    effective_at: datetime


class PriceIn(_Strict):
    """A list-price change; effective now, at a given moment, or at the coming 24:00."""

    grade: str = Field(pattern=GRADE_CODE)
    price_fen: int = Field(gt=0, le=100_000, description="fen per litre")
    effective_at: AwareDatetime | None = None
    at_midnight: bool = Field(
        default=False, description="take effect at the coming 24:00 (Asia/Shanghai)"
    )

    @model_validator(mode="after")
    def _one_moment(self) -> PriceIn:
        if self.at_midnight and self.effective_at is not None:
            raise ValueError("give effective_at or at_midnight, not both")
        return self


class PriceOut(BaseModel):
    """One list-price row (current, scheduled, past or cancelled)."""

    id: int
    station_id: int
    grade: str
    price_fen: int
    price_yuan: str
    effective_at: datetime
    created_at: datetime
    created_by: int | None
    cancelled_at: datetime | None
    state: Literal["scheduled", "current", "superseded", "cancelled"]


class StationPrices(BaseModel):
    """What a station charges now and what is scheduled."""

    station_id: int
    current: list[PriceOut]
    scheduled: list[PriceOut]
