"""E-invoice tables: sellers and their refined-oil quota, buyer titles, invoices and claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock

BigId = BigInteger().with_variant(Integer, "sqlite")


class InvoiceSeller(Base):
    """An operating company that issues invoices, with its remaining refined-oil quota."""

    __tablename__ = "invoice_sellers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tax_id: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    address_phone: Mapped[str] = mapped_column(String(200), default="")
    quota_ml: Mapped[int] = mapped_column(BigId)  # refined oil still invoiceable, millilitres
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class StationSeller(Base):
    """The company a station sells for (stations without a row use the default seller)."""

    __tablename__ = "invoice_station_sellers"

    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    seller_id: Mapped[int] = mapped_column(ForeignKey("invoice_sellers.id", ondelete="RESTRICT"))


class InvoiceTitle(Base):
    """A buyer title (抬头) a driver saved: a company with its tax id, or a person."""

    __tablename__ = "invoice_titles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # company | personal
    name: Mapped[str] = mapped_column(String(100))
    tax_id: Mapped[str | None] = mapped_column(String(18))
    email_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_masked: Mapped[str | None] = mapped_column(String(120))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class Invoice(Base):
    """One invoice document: blue, or the red-letter one reversing a blue (`original_id`)."""

    __tablename__ = "invoices"
    __table_args__ = (
        Index("ix_invoices_member_created", "member_id", "created_at"),
        Index("ix_invoices_status_at", "status", "status_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    invoice_no: Mapped[str] = mapped_column(String(20), unique=True)  # the provider's orderNo
    kind: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(10))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    seller_id: Mapped[int] = mapped_column(ForeignKey("invoice_sellers.id", ondelete="RESTRICT"))
    seller_tax_id: Mapped[str] = mapped_column(String(18))
    seller_name: Mapped[str] = mapped_column(String(100))
    seller_address: Mapped[str] = mapped_column(String(200), default="")
    buyer_kind: Mapped[str] = mapped_column(String(10))
    buyer_name: Mapped[str] = mapped_column(String(100))
    buyer_tax_id: Mapped[str | None] = mapped_column(String(18))
    email_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_masked: Mapped[str | None] = mapped_column(String(120))
    total_fen: Mapped[int] = mapped_column(BigId)
    net_fen: Mapped[int] = mapped_column(BigId)
    tax_fen: Mapped[int] = mapped_column(BigId)
    volume_ml: Mapped[int] = mapped_column(BigId)
    provider: Mapped[str] = mapped_column(String(12))
    provider_serial: Mapped[str | None] = mapped_column(String(40), unique=True)
    invoice_number: Mapped[str | None] = mapped_column(String(24))
    qr_content: Mapped[str | None] = mapped_column(String(200))
    original_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    red_reason: Mapped[str | None] = mapped_column(String(40))
    failure: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InvoiceLine(Base):
    """One line of an invoice: the fuel of one order (negative amounts on a red invoice)."""

    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "line_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="RESTRICT"), index=True
    )
    grade_code: Mapped[str] = mapped_column(String(8))
    goods_name: Mapped[str] = mapped_column(String(60))
    tax_code: Mapped[str] = mapped_column(String(19))
    unit: Mapped[str] = mapped_column(String(4))
    volume_ml: Mapped[int] = mapped_column(BigId)
    unit_price: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigId)
    net_fen: Mapped[int] = mapped_column(BigId)
    tax_fen: Mapped[int] = mapped_column(BigId)


class InvoiceClaim(Base):
    """An order's current blue invoice: at most one per order, so nothing is issued twice."""

    __tablename__ = "invoice_claims"

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), primary_key=True
    )
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
