"""Sales totals as pure code: rows from the repository folded into lines and buckets.

Money received in a window: orders count when paid in it, at what was paid (gross adds the
discounts back); refunds count when they succeeded in it; net is paid less refunds. Sales
settled at the counter (pump sales cleared by staff) are cash, with no discount.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from forecourt.backoffice.schemas import Line, Totals

CASH = "cash"
METHOD_ORDER = ("wechatpay", "alipay", "unionpay", "wallet", CASH)


@dataclass(frozen=True, slots=True)
class SaleRow:
    """Paid sales of one (bucket, method, grade)."""

    bucket: int
    method: str
    grade: str
    count: int
    volume_ml: int
    paid_fen: int
    discount_fen: int


@dataclass(frozen=True, slots=True)
class RefundRow:
    """Succeeded refunds of one (bucket, method, grade)."""

    bucket: int
    method: str
    grade: str
    amount_fen: int


@dataclass(slots=True)
class _Sum:
    orders: int = 0
    volume_ml: int = 0
    paid_fen: int = 0
    discounts_fen: int = 0
    refunds_fen: int = 0

    def line(self, key: str) -> Line:
        return Line(
            key=key,
            orders=self.orders,
            volume_ml=self.volume_ml,
            gross_fen=self.paid_fen + self.discounts_fen,
            discounts_fen=self.discounts_fen,
            refunds_fen=self.refunds_fen,
            net_fen=self.paid_fen - self.refunds_fen,
        )


@dataclass(slots=True)
class _Fold:
    total: _Sum = field(default_factory=_Sum)
    methods: dict[str, _Sum] = field(default_factory=dict)
    grades: dict[str, _Sum] = field(default_factory=dict)
    buckets: dict[int, _Sum] = field(default_factory=dict)


def _fold(sales: Iterable[SaleRow], refunds: Iterable[RefundRow]) -> _Fold:
    fold = _Fold()
    for s in sales:
        for acc in (
            fold.total,
            fold.methods.setdefault(s.method, _Sum()),
            fold.grades.setdefault(s.grade, _Sum()),
            fold.buckets.setdefault(s.bucket, _Sum()),
        ):
            acc.orders += s.count
            acc.volume_ml += s.volume_ml
            acc.paid_fen += s.paid_fen
            acc.discounts_fen += s.discount_fen
    for r in refunds:
        for acc in (
            fold.total,
            fold.methods.setdefault(r.method, _Sum()),
            fold.grades.setdefault(r.grade, _Sum()),
            fold.buckets.setdefault(r.bucket, _Sum()),
        ):
            acc.refunds_fen += r.amount_fen
    return fold


def _method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def totals(sales: Iterable[SaleRow], refunds: Iterable[RefundRow]) -> Totals:
    """Overall, per-method and per-grade lines (methods in a fixed order, grades by code)."""
    fold = _fold(sales, refunds)
    return Totals(
        total=fold.total.line("total"),
        by_method=[fold.methods[m].line(m) for m in sorted(fold.methods, key=_method_rank)],
        by_grade=[fold.grades[g].line(g) for g in sorted(fold.grades)],
    )


def buckets(sales: Iterable[SaleRow], refunds: Iterable[RefundRow], count: int) -> list[Line]:
    """One line per bucket index 0..count-1 (empty buckets are zero)."""
    fold = _fold(sales, refunds)
    return [fold.buckets.get(i, _Sum()).line(str(i)) for i in range(count)]


def cash_expected(t: Totals) -> int:
    """The cash the drawer should hold: net cash sales."""
    return next((line.net_fen for line in t.by_method if line.key == CASH), 0)
