"""Invoices as pure domain code: tax maths, refined-oil lines, amounts in words, states.

Tax maths (价税分离) per line, in integer fen: the line's tax-inclusive amount A is what the
driver actually paid for that order; the tax-exclusive amount is N = round_half_up(A / 1.13)
and the tax T = A - N, so N + T = A exactly and |N * 0.13 - T| <= 0.565 fen, far inside the
provider's tolerance of 6 fen per line (and 127 fen per invoice, reached only past 224 lines).
The unit price is A / quantity with eight decimals; |price * quantity - A| < 1 fen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

RATE_PCT = 13  # VAT on refined oil
RATE = "0.13"
UNIT_LITRE = "升"
LINE_TOLERANCE_FEN = 6
INVOICE_TOLERANCE_FEN = 127
PRICE_PLACES = 8


class Kind(StrEnum):
    """A blue (positive) invoice, or the red-letter (negative) one reversing it."""

    BLUE = "blue"
    RED = "red"


class Status(StrEnum):
    """Where an invoice is: requested -> issuing -> issued (-> reversing -> reversed) | failed."""

    REQUESTED = "requested"  # stored, waiting for the outbox to send it
    ISSUING = "issuing"  # the provider accepted it (serial known), result pending
    ISSUED = "issued"
    FAILED = "failed"
    REVERSING = "reversing"  # blue: its red-letter invoice is under way
    REVERSED = "reversed"  # blue: reversed by an issued red-letter invoice


OPEN = frozenset({Status.REQUESTED, Status.ISSUING})


# -- refined oil (成品油) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Goods:
    """A grade's entry of the provider's tax-code table."""

    tax_code: str  # 19 digits
    short_name: str  # the tax code's short name, e.g. 汽油
    name: str  # e.g. 92号车用汽油

    @property
    def goods_name(self) -> str:
        """The invoice line's goods name: `*汽油*92号车用汽油`."""
        return f"*{self.short_name}*{self.name}"


def goods_table(raw: Mapping[str, Mapping[str, str]]) -> dict[str, Goods]:
    """The configured grade -> goods table; ValueError naming a bad entry."""
    table: dict[str, Goods] = {}
    for grade, entry in raw.items():
        try:
            goods = Goods(entry["tax_code"], entry["short_name"], entry["name"])
        except KeyError as exc:
            raise ValueError(f"invoice goods of grade {grade}: missing {exc.args[0]}") from None
        if len(goods.tax_code) != 19 or not goods.tax_code.isdigit():
            raise ValueError(f"invoice goods of grade {grade}: tax code must be 19 digits")
        if not goods.short_name or not goods.name or "*" in goods.short_name + goods.name:
            raise ValueError(f"invoice goods of grade {grade}: names must be set, without '*'")
        table[grade] = goods
    return table


def litres(volume_ml: int) -> str:
    """The line quantity in litres with three decimals: 30000 -> '30.000'."""
    sign = "-" if volume_ml < 0 else ""
    whole, part = divmod(abs(volume_ml), 1000)
    return f"{sign}{whole}.{part:03d}"


def yuan(fen: int) -> str:
    """Fen as a yuan string with two decimals, as the provider expects: -5 -> '-0.05'."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def unit_price(amount_fen: int, volume_ml: int) -> str:
    """Tax-inclusive yuan per litre with up to eight decimals (at least two)."""
    if volume_ml == 0:
        raise ValueError("refined oil needs a quantity")
    price = (Decimal(abs(amount_fen)) * 10 / Decimal(abs(volume_ml))).quantize(
        Decimal(1).scaleb(-PRICE_PLACES), rounding=ROUND_HALF_UP
    )
    text = format(price, "f").rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


# -- tax maths --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Split:
    """A tax-inclusive amount split into tax-exclusive amount and tax (fen; N + T = A)."""

    amount_fen: int
    net_fen: int
    tax_fen: int


def split(amount_fen: int, rate_pct: int = RATE_PCT) -> Split:
    """Split a tax-inclusive amount (negative for red lines) exactly to the fen."""
    sign = -1 if amount_fen < 0 else 1
    amount = abs(amount_fen)
    net = (amount * 200 + (100 + rate_pct)) // (2 * (100 + rate_pct))  # round half up
    return Split(sign * amount, sign * net, sign * (amount - net))


def tax_error_fen(net_fen: int, tax_fen: int, rate_pct: int = RATE_PCT) -> Decimal:
    """|N * rate - T| in fen: how far a split is from the exact tax."""
    return abs(Decimal(net_fen) * rate_pct / 100 - tax_fen)


def within_tolerance(splits: Sequence[Split], rate_pct: int = RATE_PCT) -> bool:
    """The provider's checks: each line within 6 fen, the invoice within 127 fen."""
    if any(tax_error_fen(s.net_fen, s.tax_fen, rate_pct) > LINE_TOLERANCE_FEN for s in splits):
        return False
    net = sum(s.net_fen for s in splits)
    tax = sum(s.tax_fen for s in splits)
    return tax_error_fen(net, tax, rate_pct) <= INVOICE_TOLERANCE_FEN


def invoiceable_fen(*, settled_fen: int | None, paid_fen: int, refunded_after_fen: int) -> int:
    """What the driver kept paying for an order: the settled (else paid) amount less refunds.

    `refunded_after_fen` counts refunds after settlement only (customer refunds); the pay-at-
    pump settlement refund of an unused preset is already outside `settled_fen`.
    """
    kept = (paid_fen if settled_fen is None else settled_fen) - refunded_after_fen
    return max(0, kept)


# -- amounts in words (大写) -------------------------------------------------------------------

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("", "拾", "佰", "仟")
_GROUPS = ("", "万", "亿", "万")


def _integer_words(n: int) -> str:
    digits = str(n)
    words: list[str] = []
    zero = False
    for i, ch in enumerate(digits):
        power = len(digits) - 1 - i
        if ch == "0":
            zero = True
        else:
            if zero and words:
                words.append("零")
            zero = False
            words.append(_DIGITS[int(ch)] + _PLACES[power % 4])
        if power % 4 == 0 and power > 0:
            group = digits[max(0, i - 3) : i + 1]
            if int(group):
                words.append(_GROUPS[(power // 4) % 4] if power < 16 else "亿")
    return "".join(words)


def amount_in_words(fen: int) -> str:
    """The amount in capital Chinese numerals: 23280 -> 贰佰叁拾贰圆捌角整 (负 for red)."""
    if abs(fen) >= 10**18:
        raise ValueError("amount too large")
    prefix = "负" if fen < 0 else ""
    yuan_part, rest = divmod(abs(fen), 100)
    jiao, cent = divmod(rest, 10)
    words = _integer_words(yuan_part)
    if words:
        words += "圆"
    if jiao == 0 and cent == 0:
        return prefix + (words or "零圆") + "整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif words:
        words += "零"
    words += _DIGITS[cent] + "分" if cent else "整"
    return prefix + words
