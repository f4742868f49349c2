"""A reference model of the points ledger: explicit lots, consumed oldest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from forecourt.loyalty import points


@dataclass
class Lot:
    """What is left of one credit."""

    expires_at: datetime
    remaining: int


@dataclass
class LotModel:
    """Each credit is a lot; every debit eats the lots with the earliest date first."""

    lots: list[Lot] = field(default_factory=list)
    debt: int = 0

    @property
    def balance(self) -> int:
        """Points held."""
        return sum(lot.remaining for lot in self.lots)

    def credit(self, amount: int, at: datetime) -> None:
        """Add a lot; pay debt from it first."""
        paid = min(self.debt, amount)
        self.debt -= paid
        self.lots.append(Lot(points.lot_expiry(at), amount))
        self.lots.sort(key=lambda lot: lot.expires_at)
        self._consume(paid)

    def take(self, amount: int) -> None:
        """Remove points, oldest lots first."""
        assert amount <= self.balance
        self._consume(amount)

    def reverse(self, amount: int) -> None:
        """Take back points; what is missing becomes debt."""
        taken = min(amount, self.balance)
        self._consume(taken)
        self.debt += amount - taken

    def expire(self, now: datetime) -> int:
        """Drop what is left of lots past their date; returns the points dropped."""
        gone = sum(lot.remaining for lot in self.lots if lot.expires_at <= now)
        self.lots = [lot for lot in self.lots if lot.expires_at > now]
        return gone

    def _consume(self, amount: int) -> None:
        for lot in self.lots:
            used = min(lot.remaining, amount)
            lot.remaining -= used
            amount -= used
        self.lots = [lot for lot in self.lots if lot.remaining > 0]
