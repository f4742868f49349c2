"""Forecourt equipment, pump sales, commands, tanks, alerts and speaker announcements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock

BigId = BigInteger().with_variant(Integer, "sqlite")


class Gateway(Base):
    """The station's forecourt controller (one MQTT client per station)."""

    __tablename__ = "pump_gateways"

    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_seq: Mapped[int] = mapped_column(BigId, default=0)
    boot_id: Mapped[str | None] = mapped_column(String(64))
    firmware: Mapped[str | None] = mapped_column(String(64))
    volume_resolution_ml: Mapped[int] = mapped_column(Integer, default=1)
    price_version: Mapped[int] = mapped_column(Integer, default=0)


class Tank(Base):
    """An underground tank holding one grade."""

    __tablename__ = "tanks"
    __table_args__ = (UniqueConstraint("station_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"))
    capacity_ml: Mapped[int] = mapped_column(BigId)
    low_ml: Mapped[int] = mapped_column(BigId, default=0)
    out_ml: Mapped[int] = mapped_column(BigId, default=0)
    measured_ml: Mapped[int | None] = mapped_column(BigId)
    level_mm: Mapped[int | None] = mapped_column(Integer)
    water_mm: Mapped[int | None] = mapped_column(Integer)
    temperature_dc: Mapped[int | None] = mapped_column(Integer)
    measured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    book_ml: Mapped[int] = mapped_column(BigId, default=0)
    book_since: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    variance_alert_ml: Mapped[int] = mapped_column(BigId, default=200_000)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class TankReading(Base):
    """A tank-gauge reading."""

    __tablename__ = "tank_readings"
    __table_args__ = (Index("ix_tank_readings_tank_time", "tank_id", "measured_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tank_id: Mapped[int] = mapped_column(ForeignKey("tanks.id", ondelete="CASCADE"))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    volume_ml: Mapped[int] = mapped_column(BigId)
    level_mm: Mapped[int | None] = mapped_column(Integer)
    water_mm: Mapped[int | None] = mapped_column(Integer)
    temperature_dc: Mapped[int | None] = mapped_column(Integer)
    book_ml: Mapped[int] = mapped_column(BigId)
    event_seq: Mapped[int | None] = mapped_column(BigId)


class TankDelivery(Base):
    """Fuel delivered into a tank (from the gauge or entered by staff)."""

    __tablename__ = "tank_deliveries"
    __table_args__ = (UniqueConstraint("tank_id", "delivery_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tank_id: Mapped[int] = mapped_column(ForeignKey("tanks.id", ondelete="CASCADE"))
    delivery_ref: Mapped[str] = mapped_column(String(64))
    volume_ml: Mapped[int] = mapped_column(BigId)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(10))
    entered_by: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class Dispenser(Base):
    """A dispenser (加油机) with one or more fuelling points."""

    __tablename__ = "dispensers"
    __table_args__ = (UniqueConstraint("station_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    model: Mapped[str | None] = mapped_column(String(60))


class FuellingPointRow(Base):
    """A fuelling point and its mirrored state (the pump is the source of truth)."""

    __tablename__ = "fuelling_points"
    __table_args__ = (UniqueConstraint("station_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    dispenser_id: Mapped[int] = mapped_column(ForeignKey("dispensers.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[int] = mapped_column(Integer, default=10)
    nozzle_out: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(40))
    authorisation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_seq: Mapped[int] = mapped_column(BigId, default=0)
    missing_seqs: Mapped[list[int]] = mapped_column(JSON, default=list)
    state_before_offline: Mapped[int | None] = mapped_column(Integer)
    last_event_seq: Mapped[int] = mapped_column(BigId, default=0)
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class Nozzle(Base):
    """A nozzle: the 枪号 drivers see (1..N per station), its grade and tank."""

    __tablename__ = "nozzles"
    __table_args__ = (UniqueConstraint("station_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    fp_id: Mapped[int] = mapped_column(ForeignKey("fuelling_points.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"))
    tank_id: Mapped[int | None] = mapped_column(ForeignKey("tanks.id", ondelete="SET NULL"))
    totalizer_volume_ml: Mapped[int] = mapped_column(BigId, default=0)
    totalizer_amount_fen: Mapped[int] = mapped_column(BigId, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PumpSale(Base):
    """A completed sale from a pump's buffer: payable -> locked -> cleared."""

    __tablename__ = "pump_sales"
    __table_args__ = (
        UniqueConstraint("fp_id", "seq"),
        Index("ix_pump_sales_payable", "station_id", "status"),
        Index("ix_pump_sales_station_ended", "station_id", "ended_at"),  # book stock
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    fp_id: Mapped[int] = mapped_column(ForeignKey("fuelling_points.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigId)
    nozzle_number: Mapped[int] = mapped_column(Integer)
    grade_code: Mapped[str] = mapped_column(String(8))
    volume_ml: Mapped[int] = mapped_column(BigId)
    amount_fen: Mapped[int] = mapped_column(BigId)
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    totalizer_volume_ml: Mapped[int] = mapped_column(BigId)
    totalizer_amount_fen: Mapped[int] = mapped_column(BigId)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    status: Mapped[str] = mapped_column(String(10), default="payable")
    locked_by: Mapped[str | None] = mapped_column(String(64))
    lock_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(64))
    auth_ref: Mapped[str | None] = mapped_column(String(64))


class PumpCommand(Base):
    """A command to a gateway and its acknowledgement."""

    __tablename__ = "pump_commands"
    __table_args__ = (Index("ix_pump_commands_open", "station_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    fp_number: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(24))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    reason: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The outbox event that resends the command if no answer comes; withdrawn on the answer.
    resend_event_id: Mapped[int | None] = mapped_column(BigInteger)


class StationAlert(Base):
    """Something staff should look at: bad pump input, stock variance, offline devices."""

    __tablename__ = "station_alerts"
    __table_args__ = (Index("ix_station_alerts_open", "station_id", "resolved_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(Text)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Announcement(Base):
    """A speaker announcement, retried until the device acknowledges it."""

    __tablename__ = "speaker_announcements"
    __table_args__ = (Index("ix_speaker_announcements_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    speaker: Mapped[int] = mapped_column(Integer, default=1)
    text: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
