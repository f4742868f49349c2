"""Orders as pure domain code: kinds, the state machine and the pricing pipeline.

States only move forward (ranked); a refund never moves an order back:

    pending --pay--> paid --fuel--> fuelling --settle--> completed --refund all--> refunded
       |              |  \\__________________________--> completed (post-pay, top-up)
       |              \\--fail (pump refused) ---------> refunded
       +--cancel--> cancelled          +--expire--> expired
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from forecourt.kit.money import amount_for_volume, yuan


class Kind(StrEnum):
    """What the driver is paying for."""

    POSTPAY = "postpay"  # a completed pump sale (加油后付款)
    PREPAY = "prepay"  # pay first, the pump is authorised with the preset (先付后加)
    TOPUP = "topup"  # stored-value wallet top-up


class Status(StrEnum):
    """Where an order is in its life."""

    PENDING = "pending"
    PAID = "paid"
    FUELLING = "fuelling"
    COMPLETED = "completed"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_RANK = {
    Status.PENDING: 0,
    Status.PAID: 1,
    Status.FUELLING: 2,
    Status.COMPLETED: 3,
    Status.REFUNDED: 4,
    Status.CANCELLED: 4,
    Status.EXPIRED: 4,
}
_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PAID, Status.CANCELLED, Status.EXPIRED}),
    Status.PAID: frozenset({Status.FUELLING, Status.COMPLETED, Status.REFUNDED}),
    Status.FUELLING: frozenset({Status.COMPLETED, Status.REFUNDED}),
    Status.COMPLETED: frozenset({Status.REFUNDED}),
    Status.REFUNDED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}
FINAL = frozenset({Status.REFUNDED, Status.CANCELLED, Status.EXPIRED})


class IllegalTransition(Exception):
    """The order cannot move from its state to the requested one."""

    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"order cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_move(current: Status, target: Status) -> bool:
    """True when `current -> target` is a legal forward step."""
    return target in _ALLOWED[current]


def move(current: Status, target: Status) -> Status:
    """The new state; IllegalTransition when the step is not allowed."""
    if not can_move(current, target):
        raise IllegalTransition(current, target)
    return target


def rank(status: Status) -> int:
    """Progress of a state: later states have a higher rank."""
    return _RANK[status]


def after_payment(kind: Kind) -> Status:
    """The state a freshly paid order moves to once its side effect is applied."""
    return Status.FUELLING if kind is Kind.PREPAY else Status.COMPLETED


# -- pricing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TierDiscount:
    """The member's tier discount for one grade: fen per litre off, or a percentage."""

    name: str  # e.g. "金卡"
    per_litre_fen: int = 0
    percent_bp: int = 0  # basis points of the amount (300 = 3 %); wins over per_litre_fen


@dataclass(frozen=True, slots=True)
class Line:
    """One receipt line: the list amount, or a discount (negative amount)."""

    code: str  # list_price | member_tier | coupon | points
    label: str
    amount_fen: int
    tier: TierDiscount | None = None  # member_tier lines keep the rate (pay-at-pump settles on it)


@dataclass(frozen=True, slots=True)
class PriceInput:
    """What pricing knows about an order."""

    kind: Kind
    grade: str | None
    unit_price_fen: int  # list price per litre, snapshotted at order time
    volume_ml: int | None  # post-pay: the pump's volume; pre-pay: unknown
    amount_fen: int  # post-pay: the pump's amount; pre-pay: the preset; top-up: the amount
    member_id: int | None = None
    grade_name: str | None = None  # e.g. "92#汽油"
    tier: TierDiscount | None = None  # loaded by the order service from loyalty


@dataclass(frozen=True, slots=True)
class Priced:
    """The receipt: lines in order and the amount to pay."""

    lines: tuple[Line, ...]

    @property
    def list_fen(self) -> int:
        """The amount before discounts."""
        return sum(line.amount_fen for line in self.lines if line.amount_fen > 0)

    @property
    def discount_fen(self) -> int:
        """The discounts (a positive number)."""
        return -sum(line.amount_fen for line in self.lines if line.amount_fen < 0)

    @property
    def payable_fen(self) -> int:
        """What the driver pays."""
        return max(0, sum(line.amount_fen for line in self.lines))


Step = Callable[[PriceInput, Sequence[Line]], Sequence[Line]]


def list_price(order: PriceInput, lines: Sequence[Line]) -> Sequence[Line]:
    """The list price: the pump's amount, the preset, or the top-up amount."""
    if order.kind is Kind.TOPUP:
        return [*lines, Line("list_price", "储值充值", order.amount_fen)]
    label = order.grade_name or (f"{order.grade}#" if order.grade else "油品")
    if order.volume_ml is not None:
        centilitres = (order.volume_ml + 5) // 10
        litres = f"{centilitres // 100}.{centilitres % 100:02d}"
        label = f"{label} {litres}L × ¥{yuan(order.unit_price_fen)}"
    return [*lines, Line("list_price", label, order.amount_fen)]


def tier_discount_fen(
    tier: TierDiscount, *, amount_fen: int, volume_ml: int | None, unit_price_fen: int
) -> int:
    """The tier's discount on an amount (percent), or on its volume (fen per litre), half up.

    Without a volume (a pay-at-pump preset) the volume is what the amount buys at the list
    price. The discount never exceeds the amount.
    """
    if amount_fen <= 0:
        return 0
    if tier.percent_bp > 0:
        off = (amount_fen * tier.percent_bp + 5_000) // 10_000
    elif tier.per_litre_fen > 0:
        if volume_ml is None:
            volume_ml = amount_fen * 1000 // unit_price_fen if unit_price_fen > 0 else 0
        off = amount_for_volume(volume_ml, tier.per_litre_fen)
    else:
        off = 0
    return min(off, amount_fen)


def tier_label(tier: TierDiscount) -> str:
    """The receipt label of a tier discount, e.g. '金卡 每升优惠¥0.20'."""
    if tier.percent_bp > 0:
        whole, part = divmod(tier.percent_bp, 100)
        percent = f"{whole}" if part == 0 else f"{whole}.{part:02d}".rstrip("0")
        return f"{tier.name} 优惠{percent}%"
    return f"{tier.name} 每升优惠¥{yuan(tier.per_litre_fen)}"


def member_tier(order: PriceInput, lines: Sequence[Line]) -> Sequence[Line]:
    """The member tier's discount on fuel, as its own receipt line (none for top-ups)."""
    tier = order.tier
    if tier is None or order.kind is Kind.TOPUP:
        return lines
    off = tier_discount_fen(
        tier,
        amount_fen=order.amount_fen,
        volume_ml=order.volume_ml,
        unit_price_fen=order.unit_price_fen,
    )
    if off <= 0:
        return lines
    return [*lines, Line("member_tier", tier_label(tier), -off, tier=tier)]


def no_change(order: PriceInput, lines: Sequence[Line]) -> Sequence[Line]:
    """A step not yet filled in (coupon, points as payment)."""
    return lines


PIPELINE: tuple[Step, ...] = (list_price, member_tier, no_change, no_change)


def line_record(line: Line) -> dict[str, Any]:
    """A receipt line as stored on the order (JSON); a tier line keeps its rate."""
    record: dict[str, Any] = {"code": line.code, "label": line.label, "amount_fen": line.amount_fen}
    if line.tier is not None:
        record["tier"] = asdict(line.tier)
    return record


def tier_of(lines: Sequence[Mapping[str, Any]]) -> TierDiscount | None:
    """The tier discount an order was priced with (from its stored lines), if any."""
    for line in lines:
        rate = line.get("tier")
        if line.get("code") == "member_tier" and isinstance(rate, Mapping):
            return TierDiscount(
                name=str(rate.get("name", "")),
                per_litre_fen=int(rate.get("per_litre_fen", 0)),
                percent_bp=int(rate.get("percent_bp", 0)),
            )
    return None


def price(order: PriceInput, steps: Sequence[Step] = PIPELINE) -> Priced:
    """Run the pipeline: list price -> member tier -> coupon -> points."""
    lines: Sequence[Line] = ()
    for step in steps:
        lines = step(order, lines)
    return Priced(tuple(lines))


def settle_prepay(
    *,
    paid_fen: int,
    sale_amount_fen: int,
    volume_ml: int | None = None,
    unit_price_fen: int = 0,
    tier: TierDiscount | None = None,
) -> tuple[int, int]:
    """Pay-at-pump settlement: (charged, refund) for what was pumped, at the discounted rate.

    The pump measures at the list price; the driver is charged that amount less the tier
    discount on the volume pumped (never more than was paid).
    """
    if sale_amount_fen < 0:
        raise ValueError("sale amount cannot be negative")
    cost = sale_amount_fen
    if tier is not None:
        cost -= tier_discount_fen(
            tier, amount_fen=sale_amount_fen, volume_ml=volume_ml, unit_price_fen=unit_price_fen
        )
    charged = min(paid_fen, cost)
    return charged, paid_fen - charged


def expected_amount(volume_ml: int, unit_price_fen: int) -> int:
    """The amount a volume costs at a unit price (rounding of kit.money)."""
    return amount_for_volume(volume_ml, unit_price_fen)
