"""Wallet rules without a database."""

from __future__ import annotations

import pytest

from forecourt.wallet import domain
from forecourt.wallet.domain import Split


@pytest.mark.parametrize(
    ("amount", "bonus"),
    [
        (1_000, 0),
        (19_999, 0),
        (20_000, 1_000),
        (49_999, 1_000),
        (50_000, 4_000),
        (100_000, 10_000),
        (500_000, 10_000),
    ],
)
def test_bonus_tiers(amount: int, bonus: int) -> None:
    assert domain.bonus_for(amount) == bonus


def test_pay_uses_bonus_first() -> None:
    assert domain.pay_split(1_500, principal_fen=10_000, bonus_fen=1_000) == Split(500, 1_000)
    assert domain.pay_split(800, principal_fen=10_000, bonus_fen=1_000) == Split(0, 800)
    assert domain.pay_split(11_001, principal_fen=10_000, bonus_fen=1_000) is None


def test_refund_restores_principal_first() -> None:
    paid = Split(500, 1_000)
    assert domain.refund_split(300, paid=paid, refunded=Split(0, 0)) == Split(300, 0)
    assert domain.refund_split(900, paid=paid, refunded=Split(300, 0)) == Split(200, 700)
    with pytest.raises(ValueError, match="exceeds"):
        domain.refund_split(301, paid=paid, refunded=Split(500, 700))


def test_withdrawal_newest_topup_first() -> None:
    plan = domain.withdrawal_plan(25_000, [("p3", 10_000), ("p2", 20_000), ("p1", 50_000)])
    assert plan == [("p3", 10_000), ("p2", 15_000)]
    assert domain.withdrawal_plan(0, [("p1", 5)]) == []
