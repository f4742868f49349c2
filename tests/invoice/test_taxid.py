"""The GB 32100-2015 validator on real codes and on crafted invalid ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecourt.invoice import taxid
from forecourt.invoice.titles import check_tax_id

# Published Unified Social Credit Codes of well-known companies, and the standard's example.
REAL = [
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
    "914403001922038216",  # 华为技术有限公司
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
    "911100007109288314",  # 中国石油化工股份有限公司
    "91110000710925462X",  # 中国石油天然气股份有限公司
    "91350100M000100Y43",  # the example of GB 32100-2015
]


@pytest.mark.parametrize("code", REAL)
def test_real_codes_are_valid(code: str) -> None:
    assert taxid.validate(code) == taxid.TaxIdCheck(True)
    assert taxid.check_character(code[:17]) == code[17]


def test_typing_is_forgiven_case_and_blanks() -> None:
    assert taxid.is_valid(" 91440300708461136t ")
    assert check_tax_id("91440300708461136t").model_dump() == {"valid": True, "reason": None}


@pytest.mark.parametrize(
    ("code", "check", "reason"),
    [
        ("91440300708461136", "length", "must be 18 characters, got 17"),
        ("91440300708461136TT", "length", "must be 18 characters, got 19"),
        ("", "length", "must be 18 characters, got 0"),
        ("91440300708461I36T", "charset", "character 'I' at position 15"),
        ("9144030070846113OT", "charset", "character 'O' at position 17"),
        ("S1440300708461136T", "charset", "character 'S' at position 1"),
        ("91440300708461136V", "charset", "character 'V' at position 18"),
        ("9144030070846Z136T", "charset", "character 'Z' at position 14"),
        ("914403007084611-6T", "charset", "character '-' at position 16"),
        ("9144A300708461136T", "division", "positions 3-8 must be the six-digit"),
        (
            "91440300708461136U",
            "check_character",
            "check character is 'U', GB 32100-2015 gives 'T'",
        ),
        ("91440300708461163T", "check_character", "gives 'L'"),  # two digits swapped
        ("914403001922038215", "check_character", "gives '6'"),
    ],
)
def test_crafted_invalid_codes_name_the_failing_check(code: str, check: str, reason: str) -> None:
    result = taxid.validate(code)
    assert (result.valid, result.check) == (False, check)
    assert result.reason is not None
    assert reason in result.reason


def test_the_app_check_reports_the_reason() -> None:
    out = check_tax_id("91440300708461136U")
    assert out.valid is False
    assert out.reason == "check_character: check character is 'U', GB 32100-2015 gives 'T'"


body = st.builds(
    lambda head, division, tail: head + division + tail,
    st.text(alphabet=taxid.ALPHABET, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=taxid.ALPHABET, min_size=9, max_size=9),
)


@given(body)
def test_every_body_has_exactly_one_check_character(first17: str) -> None:
    good = taxid.check_character(first17)
    assert taxid.validate(first17 + good).valid
    others = [ch for ch in taxid.ALPHABET if ch != good]
    assert not any(taxid.validate(first17 + ch).valid for ch in others)


@given(body, st.integers(min_value=0, max_value=16), st.sampled_from(taxid.ALPHABET))
def test_any_single_substitution_is_caught(first17: str, position: int, ch: str) -> None:
    code = first17 + taxid.check_character(first17)
    changed = code[:position] + ch + code[position + 1 :]
    if changed != code:
        assert not taxid.validate(changed).valid
