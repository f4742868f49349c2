"""Pump request and response models: equipment, alerts, sales, commands, nozzle snapshot."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

GRADE_CODE = r"^-?[0-9]{1,3}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- equipment --------------------------------------------------------------------------------


class DispenserIn(_Strict):
    """A dispenser (加油机) to add."""

    number: int = Field(ge=1, le=999, examples=[1])
    model: str | None = Field(default=None, max_length=60, examples=["Tatsuno Sunny"])


class DispenserUpdate(_Strict):
    """Changes to a dispenser."""

    number: int | None = Field(default=None, ge=1, le=999)
    model: str | None = Field(default=None, max_length=60)


class FuellingPointIn(_Strict):
    """A fuelling point (one side of a dispenser), numbered per station as on the wire."""

    dispenser_id: int = Field(ge=1)
    number: int = Field(ge=1, le=9999, examples=[1])


class NozzleIn(_Strict):
    """A nozzle: the number drivers see (枪号, unique per station), its grade and tank."""

    number: int = Field(ge=1, le=9999, examples=[3])
    fp_number: int = Field(ge=1, le=9999, examples=[2])
    grade: str = Field(pattern=GRADE_CODE, examples=["95"])
    tank_number: int | None = Field(default=None, ge=1, le=9999)


class NozzleUpdate(_Strict):
    """Changes to a nozzle; `tank_number: null` detaches it from its tank."""

    fp_number: int | None = Field(default=None, ge=1, le=9999)
    grade: str | None = Field(default=None, pattern=GRADE_CODE)
    tank_number: int | None = Field(default=None, ge=1, le=9999)
    active: bool | None = None


class NozzleOut(BaseModel):
    """A configured nozzle."""

    number: int
    fp: int
    grade: str
    tank_number: int | None
    active: bool
    totalizer_volume_ml: int
    totalizer_amount_fen: int


class FuellingPointOut(BaseModel):
    """A fuelling point, its mirrored state and its nozzles."""

    id: int
    number: int
    dispenser_id: int
    state: str
    state_code: int
    nozzle_out: int | None
    error_code: str | None
    last_seq: int
    nozzles: list[NozzleOut]


class DispenserOut(BaseModel):
    """A dispenser with its fuelling points."""

    id: int
    number: int
    model: str | None
    fuelling_points: list[FuellingPointOut]


class EquipmentOut(BaseModel):
    """Everything on a station's forecourt."""

    station_id: int
    gateway_online: bool
    gateway_last_seen_at: datetime | None
    dispensers: list[DispenserOut]


# -- alerts, sales, commands ------------------------------------------------------------------


class AlertOut(BaseModel):
    """A station alert (bad pump input, pump fault, offline gateway, stock variance...)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    code: str
    detail: str
    occurrences: int
    created_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None


class SaleOut(BaseModel):
    """A sale in a pump's buffer as staff see it."""

    model_config = ConfigDict(from_attributes=True)

    fp: int
    seq: int
    nozzle: int
    grade: str
    volume_ml: int
    amount_fen: int
    unit_price_fen: int
    ended_at: datetime
    status: str
    locked_by: str | None
    lock_expires_at: datetime | None


class CommandAccepted(BaseModel):
    """A command was queued; it is sent to the gateway after the commit."""

    command_id: str


# -- public snapshot --------------------------------------------------------------------------


class PayableSaleOut(BaseModel):
    """A sale a driver may pay on this nozzle (no payer data)."""

    fp: int
    seq: int
    volume_ml: int
    amount_fen: int
    ended_at: datetime


class PublicNozzle(BaseModel):
    """A nozzle as drivers see it: grade, price, pump state and payable sales."""

    number: int
    fp: int
    grade: str
    price_fen: int | None
    state: str
    state_code: int
    payable: list[PayableSaleOut]
    payable_volume_ml: int
    payable_amount_fen: int


class StationNozzles(BaseModel):
    """The nozzles of a station right now."""

    station_id: int
    gateway_online: bool
    nozzles: list[PublicNozzle]
