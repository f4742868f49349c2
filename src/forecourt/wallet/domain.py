"""Wallet rules without I/O: top-up bonus, which bucket pays, what a refund restores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BonusTier:
    """Top up at least `min_fen`, get `bonus_fen` on top."""

    min_fen: int
    bonus_fen: int


DEFAULT_BONUS = (
    BonusTier(100_000, 10_000),  # 充1000送100
    BonusTier(50_000, 4_000),  # 充500送40
    BonusTier(20_000, 1_000),  # 充200送10
)
TOPUP_MIN_FEN = 1_000
TOPUP_MAX_FEN = 500_000


def bonus_for(amount_fen: int, tiers: Sequence[BonusTier] = DEFAULT_BONUS) -> int:
    """The bonus of the highest tier the amount reaches."""
    best = 0
    for tier in tiers:
        if amount_fen >= tier.min_fen:
            best = max(best, tier.bonus_fen)
    return best


@dataclass(frozen=True, slots=True)
class Split:
    """An amount divided between the principal and the bonus bucket."""

    principal_fen: int
    bonus_fen: int

    @property
    def total_fen(self) -> int:
        """Both buckets together."""
        return self.principal_fen + self.bonus_fen


def pay_split(amount_fen: int, *, principal_fen: int, bonus_fen: int) -> Split | None:
    """Bonus first, then principal; None when the balance is too small."""
    if amount_fen <= 0:
        raise ValueError("amount must be positive")
    if principal_fen + bonus_fen < amount_fen:
        return None
    from_bonus = min(bonus_fen, amount_fen)
    return Split(amount_fen - from_bonus, from_bonus)


def refund_split(amount_fen: int, *, paid: Split, refunded: Split) -> Split:
    """What a refund to the wallet restores: principal first, up to what each bucket paid."""
    principal_left = paid.principal_fen - refunded.principal_fen
    bonus_left = paid.bonus_fen - refunded.bonus_fen
    if amount_fen > principal_left + bonus_left:
        raise ValueError("refund exceeds what the wallet paid")
    to_principal = min(principal_left, amount_fen)
    return Split(to_principal, amount_fen - to_principal)


def withdrawal_plan(principal_fen: int, topups: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Refund the principal to the top-ups' channels, newest top-up first.

    `topups` are (payment id, amount still refundable), newest first. The bonus is forfeited.
    """
    plan: list[tuple[str, int]] = []
    left = principal_fen
    for payment_id, refundable in topups:
        if left <= 0:
            break
        take = min(left, refundable)
        if take > 0:
            plan.append((payment_id, take))
            left -= take
    return plan
