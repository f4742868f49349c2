"""The sale buffer of one fuelling point: TTC dedup, gaps, totalizers, locks and clearing.

Sales are numbered by the pump's transaction counter (TTC, `seq`, 1..2^32-1, never wraps in
practice). Totalizers are kept per nozzle (each nozzle has its own meter): after the sale with
seq n on nozzle z, `totalizer_volume_ml` and `totalizer_amount_fen` are z's meter readings.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from forecourt.pump.domain.errors import (
    InvalidInput,
    SaleAlreadyCleared,
    SaleLocked,
    SaleNotLocked,
    SequenceConflict,
    TotalizerMismatch,
    TotalizerRegression,
    UnknownSale,
)
from forecourt.pump.domain.events import (
    Event,
    SaleCleared,
    SaleDuplicate,
    SaleGap,
    SaleGapFilled,
    SaleLockAcquired,
    SaleRecorded,
    SaleUnlocked,
)

MAX_SEQ = 2**32 - 1
# A jump of more than this many TTCs is treated as a corrupt sequence number, not a gap.
MAX_GAP = 1000
# The amount totalizer must move by the sale amount within this many fen.
TOTALIZER_AMOUNT_TOLERANCE_FEN = 1


class SaleStatus(StrEnum):
    """Where a sale is in the buffer: payable -> locked (one order) -> cleared."""

    PAYABLE = "payable"
    LOCKED = "locked"
    CLEARED = "cleared"


def require_aware(moment: datetime, name: str) -> None:
    """Refuse naive datetimes (every time in the domain is aware, normally UTC)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{name} must be timezone-aware")


@dataclass(frozen=True)
class Totals:
    """A nozzle's meter readings after the sale `seq` (or read at TTC `seq`)."""

    seq: int
    volume_ml: int
    amount_fen: int


@dataclass(frozen=True)
class Sale:
    """A completed sale as the pump reported it, plus its buffer status."""

    seq: int
    nozzle: int
    grade: str
    volume_ml: int
    amount_fen: int
    unit_price_fen: int
    totalizer_volume_ml: int
    totalizer_amount_fen: int
    ended_at: datetime
    auth_ref: str | None = None
    status: SaleStatus = SaleStatus.PAYABLE
    locked_by: str | None = None
    lock_expires_at: datetime | None = None

    def facts(self) -> tuple[object, ...]:
        """The fields the pump reports; two deliveries of one sale agree on all of them."""
        return (
            self.seq,
            self.nozzle,
            self.grade,
            self.volume_ml,
            self.amount_fen,
            self.unit_price_fen,
            self.totalizer_volume_ml,
            self.totalizer_amount_fen,
            self.ended_at,
            self.auth_ref,
        )

    def lock_held(self, now: datetime) -> bool:
        """Whether a lock is in force at `now` (a lock without expiry always is)."""
        if self.status is not SaleStatus.LOCKED:
            return False
        return self.lock_expires_at is None or now < self.lock_expires_at

    def validate(self) -> None:
        """Check ranges and the internal consistency of one sale."""
        if not 1 <= self.seq <= MAX_SEQ:
            raise InvalidInput(f"seq must be 1..{MAX_SEQ}, got {self.seq}")
        if self.volume_ml < 0 or self.amount_fen < 0:
            raise InvalidInput("volume and amount must not be negative")
        if self.unit_price_fen <= 0:
            raise InvalidInput("unit price must be positive")
        if self.totalizer_volume_ml < self.volume_ml:
            raise TotalizerMismatch(f"sale {self.seq}: volume totalizer below the sale volume")
        if self.totalizer_amount_fen < self.amount_fen:
            raise TotalizerMismatch(f"sale {self.seq}: amount totalizer below the sale amount")
        require_aware(self.ended_at, "ended_at")


@dataclass(frozen=True)
class _Point:
    """One known meter reading on a nozzle and the sale that ended there (if any)."""

    seq: int
    volume_ml: int
    amount_fen: int
    sale_volume_ml: int
    sale_amount_fen: int

    @property
    def start_volume_ml(self) -> int:
        return self.volume_ml - self.sale_volume_ml

    @property
    def start_amount_fen(self) -> int:
        return self.amount_fen - self.sale_amount_fen


def _point(sale: Sale) -> _Point:
    return _Point(
        sale.seq,
        sale.totalizer_volume_ml,
        sale.totalizer_amount_fen,
        sale.volume_ml,
        sale.amount_fen,
    )


@dataclass
class SaleBuffer:
    """Sales of one fuelling point in seq order, with the dedup and totalizer bookkeeping."""

    sales: list[Sale] = field(default_factory=list)
    last_seq: int | None = None
    missing: set[int] = field(default_factory=set)
    totalizers: dict[int, Totals] = field(default_factory=dict)

    def find(self, seq: int) -> Sale | None:
        """The buffered sale with this seq, if held."""
        i = bisect.bisect_left(self.sales, seq, key=lambda s: s.seq)
        if i < len(self.sales) and self.sales[i].seq == seq:
            return self.sales[i]
        return None

    def get(self, seq: int) -> Sale:
        """The buffered sale with this seq, or `UnknownSale`."""
        sale = self.find(seq)
        if sale is None:
            raise UnknownSale(seq)
        return sale

    def payable(self, now: datetime) -> list[Sale]:
        """Sales a driver may pay now: payable ones and those whose lock has expired."""
        return [
            s
            for s in self.sales
            if s.status is SaleStatus.PAYABLE
            or (s.status is SaleStatus.LOCKED and not s.lock_held(now))
        ]

    # -- recording -----------------------------------------------------------------------

    def record(self, sale: Sale, *, volume_tolerance_ml: int) -> list[Event]:
        """Accept a new sale, fill a gap, or recognise a duplicate; refuse anything else."""
        sale.validate()
        incoming = self._incoming(sale)
        last = self.last_seq
        if sale.seq in self.missing:
            self._check_totals(sale, volume_tolerance_ml)
            self._insert(incoming)
            self.missing.discard(sale.seq)
            return [SaleRecorded(incoming), SaleGapFilled(sale.seq)]
        if last is not None and sale.seq <= last:
            stored = self.find(sale.seq)
            if stored is None:
                return [SaleDuplicate(sale.seq, verified=False)]
            if stored.facts() == sale.facts():
                return [SaleDuplicate(sale.seq, verified=True)]
            raise SequenceConflict(sale.seq, "a different sale already holds this seq")
        gap: tuple[int, ...] = ()
        if last is not None and sale.seq > last + 1:
            if sale.seq - last - 1 > MAX_GAP:
                raise SequenceConflict(sale.seq, f"jumps more than {MAX_GAP} past {last}")
            gap = tuple(range(last + 1, sale.seq))
        self._check_totals(sale, volume_tolerance_ml, gap=gap)
        self._insert(incoming)
        self.missing.update(gap)
        self.last_seq = sale.seq
        events: list[Event] = [SaleRecorded(incoming)]
        if gap:
            events.append(SaleGap(gap))
        return events

    @staticmethod
    def _incoming(sale: Sale) -> Sale:
        # A sale made under an order's authorisation belongs to that order from the start.
        if sale.auth_ref is not None:
            return replace(
                sale, status=SaleStatus.LOCKED, locked_by=sale.auth_ref, lock_expires_at=None
            )
        return replace(sale, status=SaleStatus.PAYABLE, locked_by=None, lock_expires_at=None)

    def _insert(self, sale: Sale) -> None:
        bisect.insort(self.sales, sale, key=lambda s: s.seq)
        base = self.totalizers.get(sale.nozzle)
        if base is None or sale.seq > base.seq:
            self.totalizers[sale.nozzle] = Totals(
                sale.seq, sale.totalizer_volume_ml, sale.totalizer_amount_fen
            )

    def _known_points(self, nozzle: int) -> list[_Point]:
        points = {s.seq: _point(s) for s in self.sales if s.nozzle == nozzle}
        base = self.totalizers.get(nozzle)
        if base is not None and base.seq not in points:
            points[base.seq] = _Point(base.seq, base.volume_ml, base.amount_fen, 0, 0)
        return [points[k] for k in sorted(points)]

    def _adjacent(self, low: int, high: int, gap: tuple[int, ...]) -> bool:
        """No sale between `low` and `high` can be unknown to us."""
        unknown = self.missing.union(gap)
        return not any(low < m < high for m in unknown)

    def _check_totals(self, sale: Sale, tol_ml: int, gap: tuple[int, ...] = ()) -> None:
        points = self._known_points(sale.nozzle)
        here = _point(sale)
        before = [p for p in points if p.seq < sale.seq]
        after = [p for p in points if p.seq > sale.seq]
        if before:
            self._check_pair(before[-1], here, tol_ml, gap)
        if after:
            self._check_pair(here, after[0], tol_ml, gap)

    def _check_pair(self, low: _Point, high: _Point, tol_ml: int, gap: tuple[int, ...]) -> None:
        """Meters never go back; with nothing unknown between, high starts where low ended."""
        if high.volume_ml < low.volume_ml or high.amount_fen < low.amount_fen:
            raise TotalizerRegression(
                f"totalizers at seq {high.seq} ({high.volume_ml} ml, {high.amount_fen} fen) are "
                f"below those at seq {low.seq} ({low.volume_ml} ml, {low.amount_fen} fen)"
            )
        dv = high.start_volume_ml - low.volume_ml
        da = high.start_amount_fen - low.amount_fen
        tol_fen = TOTALIZER_AMOUNT_TOLERANCE_FEN
        if self._adjacent(low.seq, high.seq, gap):
            if abs(dv) > tol_ml or abs(da) > tol_fen:
                raise TotalizerMismatch(
                    f"sale {high.seq} should start at {low.volume_ml} ml / {low.amount_fen} fen "
                    f"(end of seq {low.seq}), starts at {high.start_volume_ml} ml / "
                    f"{high.start_amount_fen} fen"
                )
        elif dv < -tol_ml or da < -tol_fen:
            raise TotalizerMismatch(f"sale {high.seq} overlaps the sale at seq {low.seq}")

    # -- locks ---------------------------------------------------------------------------

    def _replace(self, sale: Sale) -> None:
        i = bisect.bisect_left(self.sales, sale.seq, key=lambda s: s.seq)
        self.sales[i] = sale

    def lock(self, seq: int, order_id: str, now: datetime, ttl: timedelta) -> list[Event]:
        """Lock a payable sale for one order (refresh own lock; take over an expired one)."""
        require_aware(now, "now")
        if ttl <= timedelta(0):
            raise InvalidInput("lock ttl must be positive")
        sale = self.get(seq)
        if sale.status is SaleStatus.CLEARED:
            raise SaleAlreadyCleared(seq)
        previous: str | None = None
        if sale.status is SaleStatus.LOCKED and sale.locked_by != order_id:
            assert sale.locked_by is not None
            if sale.lock_held(now):
                raise SaleLocked(seq, sale.locked_by)
            previous = sale.locked_by
        expires = now + ttl
        if sale.status is SaleStatus.LOCKED and sale.locked_by == order_id:
            if sale.lock_expires_at is None:
                expires_at: datetime | None = None
            else:
                expires_at = max(expires, sale.lock_expires_at)
        else:
            expires_at = expires
        locked = replace(
            sale, status=SaleStatus.LOCKED, locked_by=order_id, lock_expires_at=expires_at
        )
        self._replace(locked)
        return [SaleLockAcquired(seq, order_id, expires_at, previous)]

    def unlock(self, seq: int, order_id: str) -> list[Event]:
        """Release a lock held by `order_id` (no-op when already payable)."""
        sale = self.get(seq)
        if sale.status is SaleStatus.CLEARED:
            raise SaleAlreadyCleared(seq)
        if sale.status is SaleStatus.PAYABLE:
            return []
        if sale.locked_by != order_id:
            assert sale.locked_by is not None
            raise SaleLocked(seq, sale.locked_by)
        self._replace(
            replace(sale, status=SaleStatus.PAYABLE, locked_by=None, lock_expires_at=None)
        )
        return [SaleUnlocked(seq, order_id)]

    def clear(self, seq: int, order_id: str) -> list[Event]:
        """Mark the sale paid by the order that locked it (idempotent for that order)."""
        sale = self.get(seq)
        if sale.status is SaleStatus.CLEARED:
            if sale.locked_by == order_id:
                return []
            raise SaleAlreadyCleared(seq)
        if sale.status is SaleStatus.PAYABLE:
            raise SaleNotLocked(f"sale {seq} is not locked by order {order_id}")
        if sale.locked_by != order_id:
            assert sale.locked_by is not None
            raise SaleLocked(seq, sale.locked_by)
        # Clearing is allowed after the lock expired as long as nobody took the sale over:
        # the payment went through, and the sale must not be paid twice.
        self._replace(replace(sale, status=SaleStatus.CLEARED, lock_expires_at=None))
        return [SaleCleared(seq, order_id)]
