"""Unified Social Credit Code (统一社会信用代码, GB 32100-2015): the buyer's and seller's tax id.

18 characters from `0123456789ABCDEFGHJKLMNPQRTUWXY` (no I, O, S, V, Z):

    1      registration authority (1 编办, 5 民政, 9 市场监管, Y 其他, ...)
    2      organisation category
    3-8    administrative division code (six digits)
    9-17   organisation code (主体标识码)
    18     check character: alphabet[(31 - sum(value(c_i) * w_i) mod 31) mod 31]
           with weights 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28 (3^i mod 31)
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


@dataclass(frozen=True, slots=True)
class TaxIdCheck:
    """The outcome of validating one code: which check failed and why."""

    valid: bool
    check: str | None = None  # length | charset | division | check_character
    reason: str | None = None


def normalize(code: str) -> str:
    """The code without surrounding blanks, in capitals (how people type it)."""
    return code.strip().upper()


def check_character(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters (already valid ones)."""
    total = sum(_VALUE[ch] * weight for ch, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate(code: str) -> TaxIdCheck:
    """Check a normalised code; the first failing check names itself with a reason."""
    if len(code) != LENGTH:
        return TaxIdCheck(False, "length", f"must be {LENGTH} characters, got {len(code)}")
    for position, ch in enumerate(code, start=1):
        if ch not in _VALUE:
            return TaxIdCheck(
                False,
                "charset",
                f"character {ch!r} at position {position} is not allowed "
                "(digits and capitals without I, O, S, V, Z)",
            )
    if not code[2:8].isdigit():
        return TaxIdCheck(
            False, "division", "positions 3-8 must be the six-digit administrative division code"
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        return TaxIdCheck(
            False,
            "check_character",
            f"check character is {code[17]!r}, GB 32100-2015 gives {expected!r}",
        )
    return TaxIdCheck(True)


def is_valid(code: str) -> bool:
    """True for a well-formed code with the right check character."""
    return validate(normalize(code)).valid
