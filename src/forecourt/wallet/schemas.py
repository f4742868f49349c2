"""Request and response models of the wallet."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class BonusTierOut(BaseModel):
    """Top up at least `min_fen`, get `bonus_fen`."""

    min_fen: int
    bonus_fen: int


class WalletOut(BaseModel):
    """A member's balance: usable at once, no 圈存."""

    balance_fen: int
    principal_fen: int
    bonus_fen: int
    withdrawable_fen: int
    bonus_tiers: list[BonusTierOut]
    topup_min_fen: int
    topup_max_fen: int


class EntryOut(BaseModel):
    """One ledger entry."""

    id: int
    kind: str
    ref: str
    principal_fen: int
    bonus_fen: int
    principal_after_fen: int
    bonus_after_fen: int
    created_at: datetime


class WithdrawalOut(BaseModel):
    """The refunds a withdrawal started (one per top-up channel)."""

    principal_fen: int
    forfeited_bonus_fen: int
    refunds: list[str]
