"""Back-office tables: the audit log and station shifts (交接班)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock

BigId = BigInteger().with_variant(Integer, "sqlite")
OPEN_ONLY = text("status = 'open'")


class AuditEntry(Base):
    """Who did what to which object, and when (append-only)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_station_id", "station_id", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_staff_id", "staff_id", "id"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    staff_id: Mapped[int] = mapped_column(Integer)  # no foreign keys: the log outlives rows
    station_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Shift(Base):
    """A station shift from opening to handover; at most one open per station."""

    __tablename__ = "shifts"
    __table_args__ = (
        Index("ix_shifts_station_opened", "station_id", "opened_at"),
        Index(
            "uq_shifts_open_station",
            "station_id",
            unique=True,
            postgresql_where=OPEN_ONLY,
            sqlite_where=OPEN_ONLY,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    opened_by: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="RESTRICT"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="RESTRICT"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8), default="open")  # open|closed
    cash_counted_fen: Mapped[int | None] = mapped_column(BigId)
    expected: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500))
