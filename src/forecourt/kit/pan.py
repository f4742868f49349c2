"""Spot payment card numbers (PANs) in text: 13-19 digits, a card-scheme prefix, Luhn-valid.

Used by the tokenization checks (R17): no card or bank account number may ever be stored
or logged. The prefix test keeps millisecond timestamps, WeChat/Alipay transaction ids and
merchant numbers from being mistaken for cards.
"""

from __future__ import annotations

import re

_RUN = re.compile(r"(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])")  # not inside hex ids
# Visa 4; Mastercard 51-55 and 2221-2720; UnionPay 62/81; Amex 34/37; JCB 35; Diners 36/38/30;
# Discover 6011/64/65; Maestro 50/56-58/67.
_PREFIX = re.compile(
    r"^(4|5[0-8]|2(2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|62|81|3[0478]|35|36|6011|6[45]|67)"
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def find_pans(text: str) -> list[str]:
    """Digit runs in `text` that look like card numbers."""
    return [m for m in _RUN.findall(text) if _PREFIX.match(m) and luhn_ok(m)]
