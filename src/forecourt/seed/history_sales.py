"""Demo history without I/O: pump sales, how each was paid, and the shifts' frozen totals.

`Builder` turns fills (pump sales) into the rows the real workflows would have left: orders
moved through the state machine, payments with provider-shaped transaction ids, refunds, wallet
top-ups and ledger entries, and audit entries. `closed_shifts` folds the sales of each shift
with the back office's own totals code, so a seeded shift holds what closing it would have.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, pairwise
from typing import Any

from forecourt.backoffice.schemas import UnpaidSales
from forecourt.backoffice.totals import CASH, RefundRow, SaleRow, cash_expected, totals
from forecourt.kit import clock, serials
from forecourt.kit.money import amount_for_volume
from forecourt.order import domain
from forecourt.order.domain import Kind, Status
from forecourt.wallet import domain as wallet_domain

SEED = 20_251_101
DAYS = 30
MEMBERS = 400
EXPIRY = timedelta(seconds=900)
# Relative traffic per local hour: quiet nights, a morning and a larger evening peak.
HOURLY = (
    1.0, 0.6, 0.4, 0.3, 0.4, 0.8, 2.0, 4.5, 6.0, 5.0, 4.0, 4.0,
    4.5, 4.0, 3.8, 4.0, 4.8, 6.0, 6.5, 5.0, 3.8, 3.0, 2.2, 1.5,
)  # fmt: skip
WEEKDAY = (1.0, 0.97, 0.98, 1.0, 1.1, 1.15, 1.05)
GRADE_MIX = {"92": 0.56, "95": 0.27, "0": 0.13, "98": 0.03, "-10": 0.01}
METHODS = {"wechatpay": 0.54, "alipay": 0.24, "unionpay": 0.08, "wallet": 0.14}
PRESETS = (10_000, 15_000, 20_000, 20_000, 25_000, 30_000, 30_000, 40_000)
TOPUPS = (50_000, 100_000, 100_000, 200_000)
SHIFT_HOURS = (7, 15, 23)  # local start of the morning, evening and night shifts
OVER_SHORT = (-5_000, -2_000, -1_000, -500, 500, 1_000, 2_000)  # the drawer at handover
PARTIAL_REASONS = ("油枪计量误差退差价", "优惠未享受，退差价")
FULL_REASONS = ("顾客误操作，全额退款", "重复支付，全额退回")


@dataclass(frozen=True, slots=True)
class NozzleRef:
    """A nozzle of a demo station and its fuelling point."""

    number: int
    fp_id: int
    fp_number: int
    grade: str


@dataclass(slots=True)
class StationRef:
    """A demo station to give a history: its nozzles, prices and staff."""

    id: int
    code: str
    hours: tuple[int, int] | None  # local opening hours, None for 24h
    prices: dict[str, int]
    nozzles: list[NozzleRef]
    staff: list[int]  # who works the counter and the shifts (empty: app payments only)
    manager: int | None


@dataclass(slots=True)
class Fill:
    """One pump sale and how it was paid."""

    station: StationRef
    nozzle: NozzleRef
    ended_at: datetime
    volume_ml: int
    amount_fen: int
    kind: str  # postpay | prepay | counter
    preset_fen: int | None = None
    seq: int = 0
    totalizer_volume_ml: int = 0
    totalizer_amount_fen: int = 0
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    paid_by: str | None = None  # order id


@dataclass(slots=True)
class Batch:
    """Rows to insert, in foreign-key order."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    sales: list[dict[str, Any]] = field(default_factory=list)
    wallet: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    sale_rows: list[tuple[int, datetime, SaleRow]] = field(default_factory=list)
    refund_rows: list[tuple[int, datetime, RefundRow]] = field(default_factory=list)


@dataclass(slots=True)
class _Wallet:
    principal_fen: int = 0
    bonus_fen: int = 0
    paid: dict[str, wallet_domain.Split] = field(default_factory=dict)


def local_midnight(day: date) -> datetime:
    """The start of a business day (Asia/Shanghai) in UTC."""
    return datetime.combine(day, time(0), tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


def _digits(rng: random.Random, n: int) -> str:
    return f"{rng.randrange(10**n):0{n}d}"


def transaction_id(rng: random.Random, provider: str, paid_at: datetime, payment_id: str) -> str:
    """A provider transaction id shaped like the provider's (the wallet uses the payment id)."""
    local = clock.local(paid_at)
    if provider == "wechatpay":
        return "42000" + _digits(rng, 5) + local.strftime("%Y%m%d") + _digits(rng, 10)
    if provider == "alipay":
        return local.strftime("%Y%m%d") + "22001" + _digits(rng, 15)
    if provider == "unionpay":
        return local.strftime("%Y%m%d%H%M%S") + _digits(rng, 7)
    return payment_id


def refund_ref(rng: random.Random, provider: str, at: datetime, refund_id: str) -> str | None:
    """The provider's refund reference as the adapters store it (Alipay returns none)."""
    local = clock.local(at)
    if provider == "wechatpay":
        return "50300" + _digits(rng, 6) + local.strftime("%Y%m%d") + _digits(rng, 10)
    if provider == "unionpay":
        return local.strftime("%Y%m%d%H%M%S") + _digits(rng, 7)
    if provider == "alipay":
        return None
    return refund_id


def demo_phone(rng: random.Random) -> str:
    """A plausible mobile number outside the 1xx0000xxxx blocks tests and examples use."""
    prefix = rng.choice(("135", "136", "138", "150", "152", "158", "159", "182", "187", "188"))
    return prefix + str(rng.randint(1000, 9999)) + _digits(rng, 4)


def fills_of(rng: random.Random, station: StationRef, start: datetime, now: datetime) -> list[Fill]:
    """The station's pump sales of the whole window, oldest first (none after `now`)."""
    staffed = bool(station.staff)
    base = rng.uniform(45, 55) if staffed else rng.uniform(4, 9)
    weights = list(HOURLY)
    if station.hours is not None:
        opens, closes = station.hours
        weights = [w if opens <= h < closes else 0.0 for h, w in enumerate(weights)]
    hours = list(accumulate(weights))
    grades = sorted({n.grade for n in station.nozzles})
    mix = list(accumulate(GRADE_MIX.get(g, 0.01) for g in grades))
    by_grade = {g: [n for n in station.nozzles if n.grade == g] for g in grades}
    fills: list[Fill] = []
    day = clock.local(start).date()
    while (midnight := local_midnight(day)) < now:
        count = round(base * WEEKDAY[day.weekday()] * rng.uniform(0.85, 1.15))
        for _ in range(count):
            hour = rng.choices(range(24), cum_weights=hours)[0]
            ended = midnight + timedelta(hours=hour, seconds=rng.randrange(3600))
            grade = rng.choices(grades, cum_weights=mix)[0]
            nozzle = rng.choice(by_grade[grade])
            price = station.prices[grade]
            roll = rng.random()
            kind = "counter" if staffed and roll < 0.12 else "prepay" if roll < 0.3 else "postpay"
            preset = None
            target = rng.randrange(10_000, 40_001)
            if kind == "prepay":
                preset = rng.choice(PRESETS)
                full = preset == PRESETS[0] or rng.random() < 0.85  # the pump stops at the preset
                target = preset if full else rng.randrange(max(10_000, preset * 6 // 10), preset)
            volume = (target * 1000 + price // 2) // price
            amount = target if target == preset else amount_for_volume(volume, price)
            if ended + timedelta(minutes=30) < now:
                fills.append(Fill(station, nozzle, ended, volume, amount, kind, preset))
        day += timedelta(days=1)
    fills.sort(key=lambda f: f.ended_at)
    return fills


def _serial(key: bytes, device: str, at: datetime) -> str:
    return serials.new_serial(key, device=device, now=at)


class Builder:
    """Turns the fills into orders, payments, refunds, wallet entries and audit rows."""

    def __init__(
        self,
        rng: random.Random,
        key: bytes,
        stations: Sequence[StationRef],
        members: list[int],
        wallet_ok: set[int],
        grade_names: dict[str, str],
        hq: int | None,
        now: datetime,
    ) -> None:
        self.rng = rng
        self.key = key
        self.stations = {s.id: s for s in stations}
        self.members = members
        self.cum_weights = list(accumulate(1.0 / (i + 3) for i in range(len(members))))
        self.preferred = {
            m: rng.choices(list(METHODS), weights=list(METHODS.values()))[0] for m in members
        }
        for m in members:
            if self.preferred[m] == "wallet" and m not in wallet_ok:
                self.preferred[m] = "wechatpay"
        self.grade_names = grade_names
        self.hq = hq
        self.now = now
        self.batch = Batch()
        self.wallets: dict[int, _Wallet] = defaultdict(_Wallet)
        self.last_seen: dict[int, datetime] = {}

    # -- pieces -------------------------------------------------------------------------

    def _order(self, fill: Fill, member: int, created: datetime, kind: Kind) -> dict[str, Any]:
        station = fill.station
        price = station.prices[fill.nozzle.grade]
        postpay = kind is Kind.POSTPAY
        priced = domain.price(
            domain.PriceInput(
                kind=kind,
                grade=fill.nozzle.grade,
                unit_price_fen=price,
                volume_ml=fill.volume_ml if postpay else None,
                amount_fen=fill.amount_fen if postpay else fill.preset_fen or 0,
                member_id=member,
                grade_name=self.grade_names.get(fill.nozzle.grade),
            )
        )
        return {
            "id": _serial(self.key, f"member:{member}", created),
            "member_id": member,
            "station_id": station.id,
            "kind": kind.value,
            "status": Status.PENDING.value,
            "nozzle_number": fill.nozzle.number,
            "fp_number": fill.nozzle.fp_number if postpay else None,
            "sale_seq": fill.seq if postpay else None,
            "grade_code": fill.nozzle.grade,
            "unit_price_fen": price,
            "volume_ml": fill.volume_ml if postpay else None,
            "preset_fen": None if postpay else fill.preset_fen,
            "list_fen": priced.list_fen,
            "discount_fen": priced.discount_fen,
            "payable_fen": priced.payable_fen,
            "paid_fen": 0,
            "settled_fen": None,
            "refunded_fen": 0,
            "bonus_fen": 0,
            "lines": [domain.line_record(line) for line in priced.lines],
            "provider": None,
            "device": f"member:{member}",
            "created_at": created,
            "expires_at": created + EXPIRY,
            "paid_at": None,
            "completed_at": None,
            "closed_at": None,
            "close_reason": None,
        }

    def _payment(
        self, order: dict[str, Any], provider: str, created: datetime, paid_at: datetime | None
    ) -> dict[str, Any]:
        pid = _serial(self.key, order["device"], created)
        row = {
            "id": pid,
            "order_id": order["id"],
            "member_id": order["member_id"],
            "provider": provider,
            "status": "paid" if paid_at else "closed",
            "amount_fen": order["payable_fen"],
            "refunded_fen": 0,
            "prepay_ref": None,
            "client_params": {},
            "transaction_id": (
                transaction_id(self.rng, provider, paid_at, pid) if paid_at else None
            ),
            "created_at": created,
            "expires_at": order["expires_at"],
            "paid_at": paid_at,
            "closed_at": None if paid_at else created + timedelta(seconds=self.rng.randint(20, 90)),
            "queried_at": None,
        }
        self.batch.payments.append(row)
        return row

    def _wallet_entry(
        self, member: int, kind: str, ref: str, split: wallet_domain.Split, at: datetime, **kw: Any
    ) -> None:
        w = self.wallets[member]
        w.principal_fen += split.principal_fen
        w.bonus_fen += split.bonus_fen
        self.batch.wallet.append(
            {
                "member_id": member,
                "kind": kind,
                "ref": ref,
                "origin": kw.get("origin"),
                "principal_fen": split.principal_fen,
                "bonus_fen": split.bonus_fen,
                "principal_after_fen": w.principal_fen,
                "bonus_after_fen": w.bonus_fen,
                "created_at": at,
            }
        )

    def _topup(self, member: int, at: datetime) -> None:
        amount = self.rng.choice(TOPUPS)
        bonus = wallet_domain.bonus_for(amount)
        priced = domain.price(
            domain.PriceInput(
                kind=Kind.TOPUP, grade=None, unit_price_fen=0, volume_ml=None, amount_fen=amount
            )
        )
        provider = self.rng.choice(("wechatpay", "wechatpay", "alipay"))
        order_id = _serial(self.key, f"member:{member}", at)
        order: dict[str, Any] = {
            "id": order_id,
            "member_id": member,
            "station_id": None,
            "kind": Kind.TOPUP.value,
            "status": Status.COMPLETED.value,
            "nozzle_number": None,
            "fp_number": None,
            "sale_seq": None,
            "grade_code": None,
            "unit_price_fen": None,
            "volume_ml": None,
            "preset_fen": None,
            "list_fen": priced.list_fen,
            "discount_fen": 0,
            "payable_fen": priced.payable_fen,
            "paid_fen": amount,
            "settled_fen": None,
            "refunded_fen": 0,
            "bonus_fen": bonus,
            "lines": [domain.line_record(line) for line in priced.lines],
            "provider": provider,
            "device": f"member:{member}",
            "created_at": at,
            "expires_at": at + EXPIRY,
            "paid_at": at + timedelta(seconds=15),
            "completed_at": at + timedelta(seconds=15),
            "closed_at": None,
            "close_reason": None,
        }
        self.batch.orders.append(order)
        self._payment(order, provider, at + timedelta(seconds=5), at + timedelta(seconds=15))
        split = wallet_domain.Split(amount, bonus)
        self._wallet_entry(member, "topup", order_id, split, at + timedelta(seconds=15))

    def _pay(self, order: dict[str, Any], provider: str, created: datetime) -> dict[str, Any]:
        """Pay an order (wallet: top up first when short); returns the payment."""
        member = int(order["member_id"])
        amount = int(order["payable_fen"])
        paid_at = created + timedelta(seconds=self.rng.randint(3, 25))
        if provider == "wallet":
            w = self.wallets[member]
            if w.principal_fen + w.bonus_fen < amount:
                self._topup(member, created - timedelta(minutes=self.rng.randint(2, 8)))
        payment = self._payment(order, provider, created, paid_at)
        if provider == "wallet":
            w = self.wallets[member]
            split = wallet_domain.pay_split(
                amount, principal_fen=w.principal_fen, bonus_fen=w.bonus_fen
            )
            assert split is not None
            w.paid[payment["id"]] = split
            negative = wallet_domain.Split(-split.principal_fen, -split.bonus_fen)
            self._wallet_entry(member, "pay", payment["id"], negative, paid_at)
        order["status"] = Status.PAID.value
        order["paid_fen"] = amount
        order["provider"] = provider
        order["paid_at"] = paid_at
        return payment

    def _refund(
        self,
        order: dict[str, Any],
        payment: dict[str, Any],
        amount: int,
        at: datetime,
        *,
        kind: str,
        reason: str,
        by: int | None,
    ) -> None:
        provider = str(payment["provider"])
        rid = _serial(self.key, "refund", at)
        done = at + timedelta(seconds=self.rng.randint(2, 40) if kind == "customer" else 2)
        self.batch.refunds.append(
            {
                "id": rid,
                "order_id": order["id"],
                "payment_id": payment["id"],
                "provider": provider,
                "kind": kind,
                "status": "succeeded",
                "amount_fen": amount,
                "reason": reason,
                "requested_by": f"staff:{by}" if by is not None else "system",
                "approved_by": None,
                "refund_ref": refund_ref(self.rng, provider, done, rid),
                "failure": None,
                "created_at": at,
                "completed_at": done,
            }
        )
        payment["refunded_fen"] += amount
        order["refunded_fen"] += amount
        if provider == "wallet":
            member = int(order["member_id"])
            paid = self.wallets[member].paid[payment["id"]]
            back = wallet_domain.refund_split(amount, paid=paid, refunded=wallet_domain.Split(0, 0))
            self._wallet_entry(member, "refund", rid, back, done, origin=payment["id"])
        if order["refunded_fen"] >= order["paid_fen"]:
            order["status"] = Status.REFUNDED.value
            order["closed_at"] = done
            order["close_reason"] = "refunded"
        station_id = int(order["station_id"])
        self.batch.refund_rows.append(
            (station_id, done, RefundRow(0, provider, str(order["grade_code"]), amount))
        )
        if by is not None:
            self.audit(
                by,
                station_id,
                "refund.requested",
                "refund",
                rid,
                at,
                {
                    "order_id": order["id"],
                    "amount_fen": amount,
                    "reason": reason,
                    "status": "processing",
                },
            )

    def audit(
        self,
        staff_id: int,
        station_id: int | None,
        action: str,
        subject_type: str,
        subject_id: str,
        at: datetime,
        details: dict[str, Any],
    ) -> None:
        """Add an audit entry."""
        self.batch.audit.append(
            {
                "at": at,
                "staff_id": staff_id,
                "station_id": station_id,
                "action": action,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "details": details,
            }
        )

    # -- one fill -----------------------------------------------------------------------

    def add(self, fill: Fill) -> None:
        """Record how the fill was paid."""
        rng = self.rng
        station = fill.station
        if fill.kind == "counter":
            staff = on_duty(station, fill.ended_at)
            locked = fill.ended_at + timedelta(seconds=rng.randint(40, 240))
            fill.cleared_at = locked + timedelta(seconds=rng.randint(2, 10))
            fill.cleared_by = f"staff:{staff}"
            details = {"fp": fill.nozzle.fp_number, "seq": fill.seq, "amount_fen": fill.amount_fen}
            subject = f"{fill.nozzle.fp_number}/{fill.seq}"
            self.audit(staff, station.id, "sale.locked", "pump_sale", subject, locked, details)
            self.audit(
                staff, station.id, "sale.cleared", "pump_sale", subject, fill.cleared_at, details
            )
            self._sale_row(fill, CASH, fill.amount_fen, fill.cleared_at)
            return
        member = rng.choices(self.members, cum_weights=self.cum_weights)[0]
        provider = self.preferred[member]
        if rng.random() < 0.2:
            provider = rng.choices(list(METHODS), weights=list(METHODS.values()))[0]
            if provider == "wallet" and self.preferred[member] != "wallet":
                provider = "wechatpay"
        if fill.kind == "prepay":
            self._prepay(fill, member, provider)
        else:
            self._postpay(fill, member, provider)
        self.last_seen[member] = fill.ended_at

    def _postpay(self, fill: Fill, member: int, provider: str) -> None:
        rng = self.rng
        created = fill.ended_at + timedelta(seconds=rng.randint(30, 240))
        roll = rng.random()
        if roll < 0.04:  # cancelled (or left to expire); the driver then pays a new order
            gone = self._order(fill, member, created, Kind.POSTPAY)
            if roll < 0.025:
                closed, status = created + timedelta(seconds=rng.randint(40, 150)), Status.CANCELLED
                if provider != "wallet":  # the cashier was opened, then abandoned
                    dropped = self._payment(gone, provider, created + timedelta(seconds=6), None)
                    dropped["closed_at"] = closed
            else:
                closed, status = gone["expires_at"], Status.EXPIRED
            gone.update(status=status.value, closed_at=closed, close_reason=status.value)
            self.batch.orders.append(gone)
            created = closed + timedelta(seconds=rng.randint(10, 60))
        order = self._order(fill, member, created, Kind.POSTPAY)
        payment = self._pay(order, provider, created + timedelta(seconds=rng.randint(4, 20)))
        paid_at: datetime = order["paid_at"]
        order.update(
            status=Status.COMPLETED.value, settled_fen=order["paid_fen"], completed_at=paid_at
        )
        fill.cleared_at, fill.cleared_by, fill.paid_by = paid_at, order["id"], order["id"]
        self.batch.orders.append(order)
        self._sale_row(fill, provider, order["paid_fen"], paid_at, order)
        self._maybe_refund(order, payment)

    def _prepay(self, fill: Fill, member: int, provider: str) -> None:
        rng = self.rng
        pumping = timedelta(seconds=fill.volume_ml // 600 + rng.randint(20, 60))
        created = fill.ended_at - pumping - timedelta(seconds=rng.randint(30, 90))
        order = self._order(fill, member, created, Kind.PREPAY)
        payment = self._pay(order, provider, created + timedelta(seconds=rng.randint(4, 15)))
        charged, back = domain.settle_prepay(
            paid_fen=order["paid_fen"],
            sale_amount_fen=fill.amount_fen,
            volume_ml=fill.volume_ml,
            unit_price_fen=order["unit_price_fen"],
        )
        order.update(
            status=Status.COMPLETED.value,
            settled_fen=charged,
            volume_ml=fill.volume_ml,
            completed_at=fill.ended_at,
            sale_seq=fill.seq,
            fp_number=fill.nozzle.fp_number,
        )
        fill.cleared_at, fill.cleared_by, fill.paid_by = fill.ended_at, order["id"], order["id"]
        self.batch.orders.append(order)
        self._sale_row(fill, provider, order["paid_fen"], order["paid_at"], order)
        if back > 0:
            reason = f"预付 {order['paid_fen']} 分，实加 {charged} 分，退差额"
            self._refund(
                order, payment, back, fill.ended_at, kind="settlement", reason=reason, by=None
            )
        else:
            self._maybe_refund(order, payment)

    def _maybe_refund(self, order: dict[str, Any], payment: dict[str, Any]) -> None:
        rng = self.rng
        if rng.random() >= 0.015:
            return
        at = order["paid_at"] + timedelta(minutes=rng.randint(10, 36 * 60))
        if at + timedelta(minutes=2) > self.now:
            return
        by = self.stations[int(order["station_id"])].manager or self.hq
        left = int(order["paid_fen"]) - int(order["refunded_fen"])
        if rng.random() < 0.5:
            amount, reason = left, rng.choice(FULL_REASONS)
        else:
            amount, reason = min(left, rng.randint(5, 30) * 100), rng.choice(PARTIAL_REASONS)
        self._refund(order, payment, amount, at, kind="customer", reason=reason, by=by)

    def _sale_row(
        self,
        fill: Fill,
        method: str,
        paid_fen: int,
        at: datetime,
        order: dict[str, Any] | None = None,
    ) -> None:
        volume = fill.volume_ml
        discount = int(order["discount_fen"]) if order else 0
        row = SaleRow(0, method, fill.nozzle.grade, 1, volume, paid_fen, discount)
        self.batch.sale_rows.append((fill.station.id, at, row))


def number_sales(
    fills: list[Fill], meters: dict[int, tuple[int, int]]
) -> dict[int, tuple[int, int]]:
    """Number sales per fuelling point, meters up to the readings; returns readings raised."""
    seqs: dict[int, int] = defaultdict(int)
    used_v: dict[int, int] = defaultdict(int)
    used_a: dict[int, int] = defaultdict(int)
    for f in fills:
        seqs[f.nozzle.fp_id] += 1
        f.seq = seqs[f.nozzle.fp_id]
        used_v[f.nozzle.number] += f.volume_ml
        used_a[f.nozzle.number] += f.amount_fen
    raised: dict[int, tuple[int, int]] = {}
    running: dict[int, tuple[int, int]] = {}
    for number, (volume, amount) in meters.items():
        if volume < used_v[number] or amount < used_a[number]:
            volume = max(volume, used_v[number] + 1_000_000)
            amount = max(amount, used_a[number] + 800_000)
            raised[number] = (volume, amount)
        running[number] = (volume - used_v[number], amount - used_a[number])
    for f in fills:
        v, a = running[f.nozzle.number]
        v, a = v + f.volume_ml, a + f.amount_fen
        running[f.nozzle.number] = (v, a)
        f.totalizer_volume_ml, f.totalizer_amount_fen = v, a
    return raised


def on_duty(station: StationRef, moment: datetime) -> int:
    """The staff member working the shift a moment falls in (the same all shift long)."""
    local = clock.local(moment)
    start = max((h for h in SHIFT_HOURS if h <= local.hour), default=SHIFT_HOURS[-1])
    day = local.date() - timedelta(days=1 if local.hour < SHIFT_HOURS[0] else 0)
    return random.Random(f"{station.code}-{day}-{start}").choice(station.staff)


def closed_shifts(
    station: StationRef,
    start: datetime,
    now: datetime,
    rng: random.Random,
    sales: list[tuple[datetime, SaleRow]],
    refunds: list[tuple[datetime, RefundRow]],
) -> list[dict[str, Any]]:
    """Closed shifts over the window (three a day), with the totals frozen at handover."""
    bounds: list[datetime] = []
    day = clock.local(start).date() - timedelta(days=1)
    while True:
        for hour in SHIFT_HOURS:
            moment = local_midnight(day) + timedelta(hours=hour)
            if start <= moment <= now:
                bounds.append(moment)
        if local_midnight(day) > now:
            break
        day += timedelta(days=1)
    sales.sort(key=lambda x: x[0])
    refunds.sort(key=lambda x: x[0])
    rows = []
    si = ri = 0
    empty = UnpaidSales(count=0, amount_fen=0, items=[]).model_dump(mode="json")
    for opened, handover in pairwise(bounds):
        in_sales: list[SaleRow] = []
        while si < len(sales) and sales[si][0] < handover:
            if sales[si][0] >= opened:
                in_sales.append(sales[si][1])
            si += 1
        in_refunds: list[RefundRow] = []
        while ri < len(refunds) and refunds[ri][0] < handover:
            if refunds[ri][0] >= opened:
                in_refunds.append(refunds[ri][1])
            ri += 1
        t = totals(in_sales, in_refunds)
        expected = cash_expected(t)
        roll = rng.random()
        over = 0 if roll < 0.75 or expected <= 0 else rng.choice(OVER_SHORT)
        note = None if over == 0 else ("钱箱长款，已登记" if over > 0 else "钱箱短款，已说明")
        opener = on_duty(station, opened)
        closer = opener  # whoever works a shift hands it over
        rows.append(
            {
                "station_id": station.id,
                "opened_by": opener,
                "opened_at": opened,
                "closed_by": closer,
                "closed_at": handover,
                "status": "closed",
                "cash_counted_fen": max(0, expected + over),
                "expected": {"totals": t.model_dump(mode="json"), "unpaid_sales": empty},
                "note": note,
                "_unpaid": 0,
                "_expected": expected,
            }
        )
    return rows
