"""Stored-value wallet: one account per member and its append-only ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.db import Base, UTCDateTime
from forecourt.kit import clock

BigId = BigInteger().with_variant(Integer, "sqlite")


class WalletAccount(Base):
    """A member's balance in two buckets: money paid in (principal) and bonus."""

    __tablename__ = "wallet_accounts"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), primary_key=True
    )
    principal_fen: Mapped[int] = mapped_column(BigId, default=0)
    bonus_fen: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


class WalletEntry(Base):
    """One balance change; never updated or deleted."""

    __tablename__ = "wallet_entries"
    __table_args__ = (
        UniqueConstraint("member_id", "kind", "ref"),
        Index("ix_wallet_entries_member", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(12))  # topup|bonus|pay|refund|withdraw|forfeit
    ref: Mapped[str] = mapped_column(String(40))  # order, refund or payment id
    origin: Mapped[str | None] = mapped_column(String(40))  # a refund's original payment
    principal_fen: Mapped[int] = mapped_column(BigId)  # signed change of each bucket
    bonus_fen: Mapped[int] = mapped_column(BigId)
    principal_after_fen: Mapped[int] = mapped_column(BigId)
    bonus_after_fen: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
