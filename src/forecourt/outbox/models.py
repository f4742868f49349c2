"""Outbox and processed-event tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock


class OutboxEvent(Base):
    """An event written in the same transaction as the change it announces."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_pending", "dispatched_at", "available_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    topic: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class ProcessedEvent(Base):
    """Marks that a handler has applied an event, so a redelivery does nothing."""

    __tablename__ = "processed_events"

    handler: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
