"""Points rules as pure code: earning, the ledger's moves, debt and oldest-first expiry.

The ledger is append-only. Every entry changes the balance by `points` and the debt by
`debt`, and records both after it, so balance = sum(points) and debt = sum(debt), and
neither is ever negative. A reversal larger than the balance takes what is there and
records the rest as debt; later credits pay the debt first (a `reverse` entry).

Expiry is first-in first-out: every credit is a lot that expires at the end of the
calendar year after it was credited (business time). Spending, reversals and expiry
consume the oldest lots first, so at any moment the points due to expire are
max(0, credits of lots past their date - everything ever taken out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from forecourt.kit import clock


class Kind(StrEnum):
    """Kinds of ledger entries."""

    EARN = "earn"  # points for a fuel order
    REDEEM = "redeem"  # spent in the points mall
    EXPIRE = "expire"  # lots past their date
    REVERSE = "reverse"  # undoes an earlier move: refund of an order, cancelled redemption, debt
    ADJUST = "adjust"  # back office, with a reason


@dataclass(frozen=True, slots=True)
class Move:
    """One entry to append: the signed change of the balance and of the debt."""

    kind: Kind
    points: int
    debt: int = 0


def points_for(kept_fen: int, multiplier_pct: int) -> int:
    """Points for an amount kept: 1 per whole yuan, times the tier multiplier (rounded down)."""
    if kept_fen <= 0 or multiplier_pct <= 0:
        return 0
    return kept_fen * multiplier_pct // 10_000


def lot_expiry(at: datetime) -> datetime:
    """When points credited at `at` expire: 24:00 of 31 December of the next business year."""
    year = clock.local(at).year + 2
    return datetime(year, 1, 1, tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


def credit(kind: Kind, points: int, *, debt: int) -> list[Move]:
    """A credit of `points`; any debt is paid from it first (a second, `reverse` move)."""
    if points <= 0:
        raise ValueError("a credit must be positive")
    moves = [Move(kind, points)]
    paid = min(debt, points)
    if paid > 0:
        moves.append(Move(Kind.REVERSE, -paid, -paid))
    return moves


def debit(kind: Kind, points: int, *, balance: int) -> Move | None:
    """Spend or remove `points`; None when the balance does not cover them."""
    if points <= 0:
        raise ValueError("a debit must be positive")
    if points > balance:
        return None
    return Move(kind, -points)


def reverse(points: int, *, balance: int) -> Move:
    """Take back `points` earned before: what the balance holds, the rest becomes debt."""
    if points <= 0:
        raise ValueError("a reversal must be positive")
    taken = min(points, balance)
    return Move(Kind.REVERSE, -taken, points - taken)


def expired_due(*, credits_past_date: int, debits_total: int) -> int:
    """Points to expire now, oldest first: old lots not yet consumed by any debit."""
    return max(0, credits_past_date - debits_total)
