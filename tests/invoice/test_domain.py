"""Tax maths exact to the fen, refined-oil lines, amounts in words (no database)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecourt.config import Settings
from forecourt.invoice import domain
from forecourt.invoice.domain import Split, split


@pytest.mark.parametrize(
    ("amount", "net", "tax"),
    [
        (1, 1, 0),  # 0.01 / 1.13 = 0.00885 -> 0.01, tax 0.00
        (2, 2, 0),
        (8, 7, 1),  # 0.0708 -> 0.07
        (13, 12, 1),  # 0.1150 -> 0.12 (half up)
        (113, 100, 13),
        (100, 88, 12),  # 0.88496 -> 0.88
        (23_280, 20_602, 2_678),  # 232.80: 206.0177 -> 206.02
        (20_000, 17_699, 2_301),  # 200.00: 176.9912 -> 176.99
        (99_999_999_999, 88_495_575_220, 11_504_424_779),  # 999,999,999.99 yuan
        (10**15, 884_955_752_212_389, 115_044_247_787_611),
    ],
)
def test_split_known_values(amount: int, net: int, tax: int) -> None:
    assert split(amount) == Split(amount, net, tax)
    assert split(-amount) == Split(-amount, -net, -tax)
    assert net + tax == amount


@given(st.integers(min_value=1, max_value=10**15))
def test_split_is_exact_and_within_the_line_tolerance(amount: int) -> None:
    parts = split(amount)
    assert parts.net_fen + parts.tax_fen == amount
    assert domain.tax_error_fen(parts.net_fen, parts.tax_fen) <= Decimal("0.565")
    exact = Decimal(amount) / Decimal("1.13")
    assert abs(parts.net_fen - exact) <= Decimal("0.5")


def test_many_lines_stay_within_the_invoice_tolerance() -> None:
    rng = random.Random(7)
    for count in (1, 50, 200, 2000):
        amounts = [rng.randint(1, 200_000) for _ in range(count)]
        splits = [split(a) for a in amounts]
        assert sum(s.amount_fen for s in splits) == sum(amounts)
        assert sum(s.net_fen + s.tax_fen for s in splits) == sum(amounts)
        assert domain.within_tolerance(splits[:224])
    worst = [split(13)] * 224  # every line 0.565 fen off, all the same way
    assert domain.tax_error_fen(sum(s.net_fen for s in worst), sum(s.tax_fen for s in worst)) < 127
    assert domain.within_tolerance(worst)


def test_tolerance_refuses_a_bad_split() -> None:
    assert not domain.within_tolerance([Split(10_000, 9_000, 1_000)])  # 1170 - 1000 = 170 fen off


@pytest.mark.parametrize(
    ("amount", "volume", "price"),
    [
        (23_280, 30_000, "7.76"),
        (1, 1, "10.00"),  # 0.01 for 1 ml
        (20_000, 25_773, "7.76005898"),  # 200.00 for 25.773 L
        (10_000, 3_000, "33.33333333"),
        (99_999_999, 12_345_678, "81.00000583"),
    ],
)
def test_unit_price_times_quantity_is_within_a_fen(amount: int, volume: int, price: str) -> None:
    assert domain.unit_price(amount, volume) == price
    assert abs(Decimal(price) * Decimal(volume) / 1000 - Decimal(amount) / 100) < Decimal("0.01")


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=10**9))
def test_unit_price_property(amount: int, volume: int) -> None:
    price = Decimal(domain.unit_price(amount, volume))
    assert abs(price * Decimal(volume) / 1000 - Decimal(amount) / 100) <= Decimal("0.01")


def test_unit_price_needs_a_quantity() -> None:
    with pytest.raises(ValueError, match="quantity"):
        domain.unit_price(100, 0)


@pytest.mark.parametrize(
    ("ml", "text"), [(30_000, "30.000"), (1, "0.001"), (25_773, "25.773"), (-30_000, "-30.000")]
)
def test_litres(ml: int, text: str) -> None:
    assert domain.litres(ml) == text


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (1, "壹分"),
        (50, "伍角整"),
        (100, "壹圆整"),
        (123, "壹圆贰角叁分"),
        (1_050, "壹拾圆伍角整"),
        (10_005, "壹佰圆零伍分"),
        (23_280, "贰佰叁拾贰圆捌角整"),
        (100_400, "壹仟零肆圆整"),
        (101_000, "壹仟零壹拾圆整"),
        (10_000_000, "壹拾万圆整"),
        (1_001_000_000, "壹仟零壹万圆整"),
        (10_000_000_000, "壹亿圆整"),
        (10_001_000_000, "壹亿零壹万圆整"),
        (100_000_000_100, "壹拾亿零壹圆整"),
        (0, "零圆整"),
        (-23_280, "负贰佰叁拾贰圆捌角整"),
    ],
)
def test_amount_in_words(fen: int, words: str) -> None:
    assert domain.amount_in_words(fen) == words


def test_configured_goods_give_the_short_name_in_the_goods_name() -> None:
    table = domain.goods_table(Settings().invoice_goods)
    assert table["92"].goods_name == "*汽油*92号车用汽油"
    assert table["0"].goods_name == "*柴油*0号车用柴油"
    assert {g.tax_code for g in table.values()} == {"1070101010100000000", "1070101030100000000"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"short_name": "汽油", "name": "92号"}, "missing tax_code"),
        ({"tax_code": "10701", "short_name": "汽油", "name": "92号"}, "19 digits"),
        ({"tax_code": "1070101010100000000", "short_name": "*汽油", "name": "92号"}, "without"),
    ],
)
def test_bad_goods_configuration_is_refused(entry: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        domain.goods_table({"92": entry})


def test_invoiceable_amount() -> None:
    assert (
        domain.invoiceable_fen(settled_fen=15_000, paid_fen=20_000, refunded_after_fen=0) == 15_000
    )
    assert (
        domain.invoiceable_fen(settled_fen=None, paid_fen=20_000, refunded_after_fen=500) == 19_500
    )
    assert (
        domain.invoiceable_fen(settled_fen=15_000, paid_fen=20_000, refunded_after_fen=2_000)
        == 13_000
    )
    assert domain.invoiceable_fen(settled_fen=100, paid_fen=100, refunded_after_fen=100) == 0
