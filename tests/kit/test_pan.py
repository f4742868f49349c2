"""The card-number detector the tokenization checks rely on."""

from __future__ import annotations

from forecourt.kit.pan import find_pans, luhn_ok


def test_known_test_cards_are_found() -> None:
    text = "visa 4111111111111111, unionpay 6212345678901232, amex 378282246310005."
    assert find_pans(text) == ["4111111111111111", "6212345678901232", "378282246310005"]
    assert find_pans("card=5555555555554444&x") == ["5555555555554444"]


def test_other_numbers_are_not_cards() -> None:
    assert not luhn_ok("4111111111111112")
    assert find_pans("4111111111111112") == []  # Luhn fails
    assert find_pans("1777593600000 1777593600018") == []  # ms timestamps, prefix 1
    assert find_pans("4200009920202611256719263780") == []  # 28-digit WeChat transaction id
    assert find_pans("777290058110048") == []  # UnionPay test merchant number
    assert find_pans("261125061357T575NHHACGFAXBKBXSVP") == []  # our serial numbers


def test_digit_runs_inside_tokens_are_not_cards() -> None:
    assert find_pans("a4111111111111111f") == []  # e.g. part of a random hex id
    assert find_pans('{"card": "4111111111111111"}') == ["4111111111111111"]
