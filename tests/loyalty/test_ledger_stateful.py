"""Hypothesis stateful test of the points rules against an explicit lot model.

The machine keeps an append-only list of entries built only with the production rules
(`points.credit/debit/reverse/expired_due`) and checks after every step: the balance and
the debt are the sums of the entries and never negative, every entry's `*_after` matches
the running sums, and expiry removes exactly what a first-in first-out lot model says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from forecourt.loyalty import points
from forecourt.loyalty.points import Kind
from tests.loyalty.model import LotModel

START = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    """What the repository would append."""

    kind: Kind
    points: int
    debt: int
    balance_after: int
    debt_after: int
    expires_at: datetime | None


class LedgerMachine(RuleBasedStateMachine):
    """Earn, redeem, reverse, adjust, let time pass and expire, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.entries: list[Entry] = []
        self.model = LotModel()

    @property
    def balance(self) -> int:
        return self.entries[-1].balance_after if self.entries else 0

    @property
    def debt(self) -> int:
        return self.entries[-1].debt_after if self.entries else 0

    def _append(self, move: points.Move) -> None:
        balance, debt = self.balance + move.points, self.debt + move.debt
        assert balance >= 0, "balance went negative"
        assert debt >= 0, "debt went negative"
        expires = points.lot_expiry(self.now) if move.points > 0 else None
        self.entries.append(Entry(move.kind, move.points, move.debt, balance, debt, expires))

    @rule(amount=st.integers(1, 5_000))
    def earn(self, amount: int) -> None:
        for move in points.credit(Kind.EARN, amount, debt=self.debt):
            self._append(move)
        self.model.credit(amount, self.now)

    @rule(amount=st.integers(1, 5_000))
    def redeem(self, amount: int) -> None:
        move = points.debit(Kind.REDEEM, amount, balance=self.balance)
        if amount > self.balance:
            assert move is None
            return
        assert move is not None
        self._append(move)
        self.model.take(amount)

    @rule(amount=st.integers(1, 5_000))
    def reverse(self, amount: int) -> None:
        self._append(points.reverse(amount, balance=self.balance))
        self.model.reverse(amount)

    @rule(amount=st.integers(-3_000, 3_000).filter(bool))
    def adjust(self, amount: int) -> None:
        if amount > 0:
            for credit in points.credit(Kind.ADJUST, amount, debt=self.debt):
                self._append(credit)
            self.model.credit(amount, self.now)
            return
        debit = points.debit(Kind.ADJUST, -amount, balance=self.balance)
        if debit is not None:
            self._append(debit)
            self.model.take(-amount)

    @rule(days=st.integers(1, 400))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)

    @precondition(lambda self: self.entries)
    @rule()
    def expire(self) -> None:
        old = sum(e.points for e in self.entries if e.expires_at and e.expires_at <= self.now)
        taken = -sum(e.points for e in self.entries if e.points < 0)
        due = points.expired_due(credits_past_date=old, debits_total=taken)
        assert due <= self.balance
        assert due == self.model.expire(self.now), "expiry is not oldest-first"
        if due:
            move = points.debit(Kind.EXPIRE, due, balance=self.balance)
            assert move is not None
            self._append(move)
        assert self.balance == self.model.balance
        live = sum(lot.remaining for lot in self.model.lots)
        assert self.balance == live, "points older than their date survived expiry"

    @invariant()
    def sums_match(self) -> None:
        assert self.balance == sum(e.points for e in self.entries) >= 0
        assert self.debt == sum(e.debt for e in self.entries) >= 0
        assert (self.balance, self.debt) == (self.model.balance, self.model.debt)
        assert self.balance == 0 or self.debt == 0, "debt is paid before points are held"


LedgerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_ledger_rules = LedgerMachine.TestCase
