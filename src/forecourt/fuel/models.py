"""Fuel grade, price and cap tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock


class Grade(Base):
    """A fuel grade such as 92# petrol or 0# diesel."""

    __tablename__ = "grades"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PriceCap(Base):
    """The regulated maximum retail price of a grade in a province, from a moment on."""

    __tablename__ = "price_caps"
    __table_args__ = (Index("ix_price_caps_lookup", "province", "grade_code", "effective_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    province: Mapped[str] = mapped_column(String(20))
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"))
    cap_fen: Mapped[int] = mapped_column(Integer)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class StationPrice(Base):
    """A station's list price (fen per litre) for a grade, effective from a moment on."""

    __tablename__ = "station_prices"
    __table_args__ = (
        Index("ix_station_prices_lookup", "station_id", "grade_code", "effective_at"),
        Index("ix_station_prices_due", "announced_at", "effective_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"))
    price_fen: Mapped[int] = mapped_column(Integer)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    created_by: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
