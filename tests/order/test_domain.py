"""Order state machine and pricing, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecourt.order import domain
from forecourt.order.domain import IllegalTransition, Kind, Status


def test_happy_paths() -> None:
    assert domain.move(Status.PENDING, Status.PAID) is Status.PAID
    assert domain.move(Status.PAID, Status.FUELLING) is Status.FUELLING
    assert domain.move(Status.FUELLING, Status.COMPLETED) is Status.COMPLETED
    assert domain.move(Status.COMPLETED, Status.REFUNDED) is Status.REFUNDED
    assert domain.after_payment(Kind.PREPAY) is Status.FUELLING
    assert domain.after_payment(Kind.POSTPAY) is Status.COMPLETED


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.PAID, Status.PENDING),
        (Status.COMPLETED, Status.PAID),
        (Status.CANCELLED, Status.PAID),
        (Status.EXPIRED, Status.PAID),
        (Status.REFUNDED, Status.COMPLETED),
        (Status.PENDING, Status.COMPLETED),
        (Status.PAID, Status.CANCELLED),
    ],
)
def test_illegal_steps_are_refused(current: Status, target: Status) -> None:
    with pytest.raises(IllegalTransition):
        domain.move(current, target)


@given(st.lists(st.sampled_from(list(Status)), max_size=12))
def test_states_only_move_forward(targets: list[Status]) -> None:
    state = Status.PENDING
    for target in targets:
        if domain.can_move(state, target):
            assert domain.rank(target) > domain.rank(state)
            state = domain.move(state, target)
        else:
            with pytest.raises(IllegalTransition):
                domain.move(state, target)


def test_pricing_pipeline_list_price_only() -> None:
    priced = domain.price(
        domain.PriceInput(
            kind=Kind.POSTPAY, grade="95", unit_price_fen=812, volume_ml=30_000, amount_fen=24_360
        )
    )
    assert [(line.code, line.amount_fen) for line in priced.lines] == [("list_price", 24_360)]
    assert priced.lines[0].label == "95# 30.00L × ¥8.12"
    assert (priced.list_fen, priced.discount_fen, priced.payable_fen) == (24_360, 0, 24_360)


def test_pricing_steps_plug_in() -> None:
    def tier(order: domain.PriceInput, lines: object) -> list[domain.Line]:
        assert isinstance(lines, tuple | list)
        return [*lines, domain.Line("member_tier", "金卡 每升减0.30元", -900)]

    priced = domain.price(
        domain.PriceInput(
            kind=Kind.POSTPAY, grade="92", unit_price_fen=760, volume_ml=30_000, amount_fen=22_800
        ),
        steps=(domain.list_price, tier),
    )
    assert (priced.list_fen, priced.discount_fen, priced.payable_fen) == (22_800, 900, 21_900)


@pytest.mark.parametrize(
    ("paid", "pumped", "expected"),
    [
        (30_000, 24_368, (24_368, 5_632)),
        (30_000, 30_000, (30_000, 0)),
        (30_000, 0, (0, 30_000)),
        (30_000, 30_001, (30_000, 0)),
    ],
)
def test_settle_prepay(paid: int, pumped: int, expected: tuple[int, int]) -> None:
    assert domain.settle_prepay(paid_fen=paid, sale_amount_fen=pumped) == expected
