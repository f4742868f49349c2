"""Station tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock


class Station(Base):
    """A fuel station; coordinates are WGS-84."""

    __tablename__ = "stations"
    __table_args__ = (Index("ix_stations_city", "province", "city"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    brand: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(40))
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    phone: Mapped[str | None] = mapped_column(String(30))
    open_24h: Mapped[bool] = mapped_column(Boolean, default=False)
    opens_at: Mapped[str | None] = mapped_column(String(5))
    closes_at: Mapped[str | None] = mapped_column(String(5))
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=clock.now, onupdate=clock.now, index=True
    )

    def __repr__(self) -> str:
        return f"Station(id={self.id!r}, code={self.code!r})"

    def snapshot(self) -> dict[str, Any]:
        """Plain values for events and the spatial index."""
        return {
            "id": self.id,
            "lat": self.lat,
            "lng": self.lng,
            "status": self.status,
            "open_24h": self.open_24h,
            "opens_at": self.opens_at,
            "closes_at": self.closes_at,
        }
