"""Payments, provider callbacks, refunds, reconciliation and idempotency records."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock

BigId = BigInteger().with_variant(Integer, "sqlite")


class Payment(Base):
    """One attempt to pay an order through one provider; the id is the merchant order number."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "transaction_id"),
        Index("ix_payments_order", "order_id"),
        Index("ix_payments_status_created", "status", "created_at"),
        Index("ix_payments_provider_paid", "provider", "paid_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|paid|closed
    amount_fen: Mapped[int] = mapped_column(BigId)
    refunded_fen: Mapped[int] = mapped_column(BigId, default=0)
    prepay_ref: Mapped[str | None] = mapped_column(String(128))
    client_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentNotification(Base):
    """Every verified provider callback, kept for audit and reconciliation."""

    __tablename__ = "payment_notifications"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(12))
    event_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))
    out_trade_no: Mapped[str] = mapped_column(String(64), index=True)
    out_refund_no: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigId)
    succeeded: Mapped[bool]
    outcome: Mapped[str] = mapped_column(String(24))  # applied|duplicate|unknown_order|mismatch
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class Refund(Base):
    """Money returned for an order; the id is the merchant refund number."""

    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_order", "order_id"),
        Index("ix_refunds_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(12))  # customer|settlement|late_payment|withdrawal
    status: Mapped[str] = mapped_column(String(16))  # pending_approval|processing|succeeded|...
    amount_fen: Mapped[int] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(40))
    approved_by: Mapped[str | None] = mapped_column(String(40))
    refund_ref: Mapped[str | None] = mapped_column(String(64))
    failure: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reconciliation(Base):
    """One provider statement matched against our payments and refunds."""

    __tablename__ = "reconciliations"
    __table_args__ = (UniqueConstraint("provider", "bill_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(12))
    bill_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # balanced|discrepancies
    bill_rows: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    bill_total_fen: Mapped[int] = mapped_column(BigId)
    our_total_fen: Mapped[int] = mapped_column(BigId)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class IdempotencyRecord(Base):
    """The stored answer to a request sent with an Idempotency-Key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("subject", "route", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(40))
    route: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, index=True)
