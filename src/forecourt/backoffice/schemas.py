"""Request and response models of the back office."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ExportFormat = Literal["csv", "xlsx"]


class AuditOut(BaseModel):
    """One audit entry."""

    id: int
    at: datetime
    staff_id: int
    staff_name: str | None
    station_id: int | None
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    """A page of audit entries, newest first; pass `next_cursor` as `cursor` for more."""

    items: list[AuditOut]
    next_cursor: str | None


class Line(BaseModel):
    """Sales of one payment method, one grade, or all: money in fen, volume in millilitres."""

    key: str
    orders: int
    volume_ml: int
    gross_fen: int
    discounts_fen: int
    refunds_fen: int
    net_fen: int


class Totals(BaseModel):
    """Sales in a window: overall, by payment method and by grade."""

    total: Line
    by_method: list[Line]
    by_grade: list[Line]


class UnpaidSale(BaseModel):
    """A pump sale nobody has paid for yet."""

    fp: int
    seq: int
    nozzle: int
    grade: str
    volume_ml: int
    amount_fen: int
    ended_at: datetime
    status: str


class UnpaidSales(BaseModel):
    """Pump sales of the window still payable or locked (a warning at handover)."""

    count: int
    amount_fen: int
    items: list[UnpaidSale]


class ShiftOpenIn(BaseModel):
    """Open a shift."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=500)


class ShiftCloseIn(BaseModel):
    """Close a shift with the cash counted in the drawer."""

    model_config = ConfigDict(extra="forbid")

    cash_counted_fen: int = Field(ge=0, le=10**11)
    note: str | None = Field(default=None, max_length=500)


class ShiftSummary(BaseModel):
    """A shift in a list."""

    id: int
    station_id: int
    status: Literal["open", "closed"]
    opened_by: int
    opened_by_name: str | None
    opened_at: datetime
    closed_by: int | None
    closed_by_name: str | None
    closed_at: datetime | None
    cash_counted_fen: int | None
    cash_expected_fen: int | None
    over_short_fen: int | None
    net_fen: int | None
    note: str | None


class ShiftOut(ShiftSummary):
    """A shift with its totals: running while open, the snapshot taken at close after."""

    station_name: str
    window_end: datetime
    totals: Totals
    unpaid_sales: UnpaidSales
    warnings: list[str]


class ShiftPage(BaseModel):
    """A page of shifts, newest first; pass `next_cursor` as `cursor` for more."""

    items: list[ShiftSummary]
    next_cursor: str | None


class Bucket(BaseModel):
    """One hour (today) or one day (7 / 30 days) of sales, Asia/Shanghai."""

    start: datetime
    label: str
    orders: int
    volume_ml: int
    gross_fen: int
    net_fen: int


class DashboardOut(BaseModel):
    """Sales of the last 1, 7 or 30 business days."""

    station_id: int | None
    days: int
    start: datetime
    end: datetime
    totals: Line
    by_grade: list[Line]
    by_method: list[Line]
    series: list[Bucket]
