"""Fuel and top-up orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock

BigId = BigInteger().with_variant(Integer, "sqlite")


class Order(Base):
    """One thing a driver pays for; the id is its serial number (R19)."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_member_created", "member_id", "created_at"),
        Index("ix_orders_station_created", "station_id", "created_at"),
        Index("ix_orders_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    nozzle_number: Mapped[int | None] = mapped_column(Integer)
    fp_number: Mapped[int | None] = mapped_column(Integer)
    sale_seq: Mapped[int | None] = mapped_column(BigId)
    grade_code: Mapped[str | None] = mapped_column(String(8))
    unit_price_fen: Mapped[int | None] = mapped_column(Integer)
    volume_ml: Mapped[int | None] = mapped_column(BigId)
    preset_fen: Mapped[int | None] = mapped_column(BigId)
    list_fen: Mapped[int] = mapped_column(BigId)
    discount_fen: Mapped[int] = mapped_column(BigId, default=0)
    payable_fen: Mapped[int] = mapped_column(BigId)
    paid_fen: Mapped[int] = mapped_column(BigId, default=0)
    settled_fen: Mapped[int | None] = mapped_column(BigId)
    refunded_fen: Mapped[int] = mapped_column(BigId, default=0)
    bonus_fen: Mapped[int] = mapped_column(BigId, default=0)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    provider: Mapped[str | None] = mapped_column(String(12))
    device: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(40))
