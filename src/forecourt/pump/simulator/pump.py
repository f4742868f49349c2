"""One simulated fuelling point: nozzles, meters, TTC, the sale buffer and the pump physics.

Pure: no I/O and no clock of its own. Every method takes `now` (the wall-clock time written
into `ts` and compared with a command's `valid_until`) and `tick` also takes `dt`, the
simulated seconds since the last tick, so tests step the pump deterministically and the
gateway can run it faster than real time. Methods return the messages the gateway must
publish, in order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from forecourt.kit.money import amount_for_volume
from forecourt.pump import protocol
from forecourt.pump.domain import (
    ACTIVE,
    FPState,
    FuellingPoint,
    Nozzle,
    Preset,
    PresetKind,
    PumpError,
    SaleBuffer,
    SaleStatus,
    StateChanged,
)
from forecourt.pump.protocol import TopicKind

S = FPState
# A gateway never times out server locks (section 7.2); the domain buffer needs a ttl.
_FOREVER = timedelta(days=3650)
# A pump without a preset or a driver's target stops here (a full truck tank and more).
MAX_TRANSACTION_ML = 999_000


class SimError(Exception):
    """A driver action the pump cannot do now (e.g. lifting a nozzle while another is out)."""


@dataclass(frozen=True)
class NozzleSpec:
    """A nozzle of the fuelling point and its meters at start-up."""

    number: int
    grade: str
    totalizer_volume_ml: int = 0
    totalizer_amount_fen: int = 0


@dataclass(frozen=True)
class FpSpec:
    """A fuelling point as configured: its nozzles and the pump's newest TTC."""

    number: int
    nozzles: tuple[NozzleSpec, ...]
    last_seq: int = 0


@dataclass(frozen=True)
class PumpConfig:
    """Physics and timing of the simulated pumps, in simulated seconds."""

    flow_min_ml_s: float = 500.0
    flow_max_ml_s: float = 800.0
    progress_seconds: float = 0.5
    start_delay_seconds: float = 1.0
    auto_authorise: bool = True
    auto_authorise_delay_seconds: float = 0.5
    sale_resend_seconds: float = 30.0
    stuck_error_after_seconds: float = 60.0
    buffer_capacity: int = 50
    keep_sales: int = 1000

    def __post_init__(self) -> None:
        if not 0 < self.flow_min_ml_s <= self.flow_max_ml_s:
            raise ValueError("flow rates must satisfy 0 < min <= max")
        if self.progress_seconds <= 0 or self.sale_resend_seconds <= 0:
            raise ValueError("intervals must be positive")


@dataclass(frozen=True)
class Outgoing:
    """A message for the gateway to publish on `kind` (numbered by fp, tank or speaker)."""

    kind: TopicKind
    number: int | None
    message: protocol.Message


class EventCounter:
    """The gateway's `event_seq`: strictly increasing across everything it publishes."""

    def __init__(self, start: int) -> None:
        self.value = start

    def next(self) -> int:
        """The next event_seq."""
        self.value += 1
        return self.value


class PriceBook:
    """Unit prices per grade and the price-table version in force at the pumps."""

    def __init__(self, prices: Mapping[str, int], version: int | None = None) -> None:
        self.prices = dict(prices)
        self.version = version
        self.pending: protocol.PriceTableCommand | None = None

    def price(self, grade: str) -> int:
        """Unit price of a grade (fen/L); SimError when the station has no price for it."""
        try:
            return self.prices[grade]
        except KeyError:
            raise SimError(f"no price for grade {grade}") from None


@dataclass
class HeldSale:
    """A completed sale in the pump's memory and whether the server acknowledged it."""

    report: protocol.SaleReport
    acked: bool = False
    refused: str | None = None
    resend_in: float = 0.0


@dataclass
class Transaction:
    """The transaction on the pump display (nozzle out, possibly flowing)."""

    nozzle: int
    grade: str
    unit_price_fen: int
    price_version: int | None
    auth_ref: str | None
    limit_ml: int
    rate_ml_s: float
    started_at: datetime | None = None
    volume: float = 0.0
    flowing: bool = False
    start_in: float = 0.0
    since_progress: float = 0.0

    @property
    def volume_ml(self) -> int:
        """Whole millilitres on the display."""
        return math.floor(self.volume)

    @property
    def amount_fen(self) -> int:
        """Amount on the display (the one rounding rule)."""
        return amount_for_volume(self.volume_ml, self.unit_price_fen)


@dataclass
class Driver:
    """What the person at the nozzle will do: fuel up to a target, hang up after a pause."""

    target_ml: int | None = None
    hang_after: float | None = None
    hang_in: float | None = None


def preset_limit_ml(preset: Preset, unit_price_fen: int) -> int:
    """The volume at which the pump stops for a preset (amount presets: exactly the amount)."""
    if preset.kind is PresetKind.VOLUME:
        return preset.value
    # Smallest volume whose rounded amount reaches the preset; at prices above 10 yuan/L one
    # ml can add more than a fen, then the pump stops at the last volume not above it.
    volume = -(-(preset.value * 1000 - 500) // unit_price_fen)
    if amount_for_volume(volume, unit_price_fen) > preset.value:
        volume -= 1
    return max(volume, 0)


@dataclass
class _Totals:
    volume_ml: int
    amount_fen: int


@dataclass
class PumpSim:
    """One fuelling point of the simulated gateway."""

    spec: FpSpec
    prices: PriceBook
    events: EventCounter
    config: PumpConfig = field(default_factory=PumpConfig)
    rng: random.Random = field(default_factory=random.Random)
    on_sale: Callable[[protocol.SaleReport], None] | None = None
    """Called with every new sale (the gateway draws its volume from the tank)."""

    def __post_init__(self) -> None:
        self.number = self.spec.number
        self.grades = {n.number: n.grade for n in self.spec.nozzles}
        self.totals = {
            n.number: _Totals(n.totalizer_volume_ml, n.totalizer_amount_fen)
            for n in self.spec.nozzles
        }
        self.ttc = self.spec.last_seq
        self.held: dict[int, HeldSale] = {}
        self.buffer = SaleBuffer()
        self._reset_state()

    def _reset_state(self) -> None:
        nozzles = {n: Nozzle(n, g) for n, g in self.grades.items()}
        self.fp = FuellingPoint(self.number, nozzles)
        self.fp.open()
        self.lifted: int | None = None
        self.tx: Transaction | None = None
        self.driver: Driver | None = None
        self.auto_authorise_in: float | None = None
        self.stuck = False
        self.stuck_for = 0.0
        self.price_version_shown = self.prices.version

    # -- views ---------------------------------------------------------------------------

    @property
    def state(self) -> FPState:
        """The fuelling point's IFSF state."""
        return self.fp.state

    def unacked(self) -> list[HeldSale]:
        """Sales the server has not acknowledged (nor refused), oldest first."""
        return [h for _, h in sorted(self.held.items()) if not h.acked]

    def payable_count(self) -> int:
        """Sales in the buffer waiting to be paid."""
        return sum(1 for s in self.buffer.sales if s.status is SaleStatus.PAYABLE)

    def open_count(self) -> int:
        """Sales not cleared yet (they occupy the pump's buffer)."""
        return sum(1 for s in self.buffer.sales if s.status is not SaleStatus.CLEARED)

    def busy(self) -> bool:
        """A nozzle is out or the pump is authorised or in a transaction."""
        return self.lifted is not None or self.state is not S.IDLE

    # -- reports -------------------------------------------------------------------------

    def state_report(self, now: datetime) -> Outgoing:
        """The current state (published retained)."""
        state = self.fp.state
        nozzle = self.fp.nozzle if state in {S.CALLING, S.AUTHORISED} | ACTIVE else None
        report = protocol.StateReport(
            event_seq=self.events.next(),
            ts=now,
            state=int(state),
            nozzle=nozzle,
            error_code=self.fp.error_code if state is S.ERROR else None,
            last_seq=self.ttc,
            price_version=self.price_version_shown,
        )
        return Outgoing(TopicKind.FP_STATE, self.number, report)

    def _progress(self, now: datetime) -> Outgoing:
        tx = self.tx
        assert tx is not None
        tx.since_progress = 0.0
        progress = protocol.FuellingProgress(
            event_seq=self.events.next(),
            ts=now,
            nozzle=tx.nozzle,
            grade=tx.grade,
            volume_ml=tx.volume_ml,
            amount_fen=tx.amount_fen,
            unit_price_fen=tx.unit_price_fen,
            auth_ref=tx.auth_ref,
        )
        return Outgoing(TopicKind.FP_PROGRESS, self.number, progress)

    def sale_message(self, held: HeldSale, now: datetime, *, reread: bool = False) -> Outgoing:
        """A publication of a held sale: identical content, new `ts`."""
        report = held.report.model_copy(update={"ts": now, "reread": reread})
        return Outgoing(TopicKind.FP_SALE, self.number, report)

    # -- the driver ----------------------------------------------------------------------

    def lift(
        self,
        nozzle: int,
        now: datetime,
        *,
        target_ml: int | None = None,
        hang_after: float | None = None,
    ) -> list[Outgoing]:
        """A driver lifts a nozzle; they stop at `target_ml` and hang up `hang_after` s later."""
        if nozzle not in self.grades:
            raise SimError(f"fp {self.number} has no nozzle {nozzle}")
        if self.lifted is not None:
            raise SimError(f"nozzle {self.lifted} of fp {self.number} is already out")
        if self.state not in (S.IDLE, S.AUTHORISED):
            raise SimError(f"fp {self.number} is {self.state.name}")
        self.prices.price(self.grades[nozzle])  # a grade without a price cannot be sold
        try:
            events = self.fp.nozzle_lifted(nozzle)
        except PumpError as exc:
            raise SimError(str(exc)) from None
        self.lifted = nozzle
        self.driver = Driver(target_ml=target_ml, hang_after=hang_after)
        if any(isinstance(e, StateChanged) and e.to_state is S.STARTED for e in events):
            return [self.state_report(now), *self._begin(now)]
        if self.config.auto_authorise and self.open_count() < self.config.buffer_capacity:
            self.auto_authorise_in = self.config.auto_authorise_delay_seconds
        return [self.state_report(now)]

    def hang(self, now: datetime) -> list[Outgoing]:
        """The nozzle goes back into its holster (ignored while the nozzle switch is stuck)."""
        if self.lifted is None or self.stuck:
            return []
        self.lifted = None
        self.driver = None
        self.auto_authorise_in = None
        if self.state is S.AUTHORISED:
            self.fp.nozzle_hung()  # stays authorised, waiting for a nozzle
            return [self.state_report(now)]
        if self.fp.nozzle is None:  # stopped by the server while the nozzle was out
            return []
        return self._end(now, self.fp.nozzle_hung)

    def set_stuck(self, now: datetime, nozzle: int | None = None) -> list[Outgoing]:
        """Fault: a nozzle switch reports "lifted" with nobody there (needs the pump idle)."""
        if self.busy():
            raise SimError(f"fp {self.number} is busy; a stuck nozzle needs it idle")
        chosen = nozzle if nozzle is not None else min(self.grades)
        self.fp.nozzle_lifted(chosen)
        self.lifted = chosen
        self.stuck = True
        self.stuck_for = 0.0
        return [self.state_report(now)]

    def clear_stuck(self, now: datetime) -> list[Outgoing]:
        """The technician frees the nozzle switch: the pump returns to Idle."""
        if not self.stuck:
            return []
        self.stuck = False
        self.lifted = None
        if self.state is S.ERROR:
            self.fp.apply_state_report(S.IDLE)
        else:
            self.fp.nozzle_hung()
        return [self.state_report(now)]

    # -- the server ----------------------------------------------------------------------

    def authorise(self, command: protocol.AuthoriseCommand, now: datetime) -> list[Outgoing]:
        """Authorise for an order (raises PumpError/SimError with the reject reason)."""
        if self.open_count() >= self.config.buffer_capacity:
            raise Reject("buffer_full")
        if command.nozzle is not None and (
            command.nozzle not in self.grades
            or self.grades[command.nozzle] not in self.prices.prices
        ):
            raise Reject("nozzle_unknown")
        if self.stuck:
            raise Reject("fp_busy")
        if self.state is S.ERROR:
            raise Reject("fp_offline")
        if self.state in (S.CLOSED, S.INOPERATIVE):
            raise Reject("fp_closed")
        if self.state not in (S.IDLE, S.CALLING):
            raise Reject("fp_busy")
        if command.nozzle is not None and self.lifted not in (None, command.nozzle):
            raise Reject("fp_busy")
        preset = command.preset.to_domain() if command.preset else None
        ttl = command.valid_until - now
        self.fp.authorise(
            preset=preset, order_id=command.auth_ref, now=now, ttl=ttl, nozzle=command.nozzle
        )
        self.auto_authorise_in = None
        out = [self.state_report(now)]
        if self.lifted is not None:
            self.fp.start()
            out += [self.state_report(now), *self._begin(now)]
        return out

    def stop(self, now: datetime) -> list[Outgoing]:
        """Stop now and end the authorisation (a sale follows if product flowed)."""
        if self.state is S.AUTHORISED:
            self.fp.stop()
            return [self.state_report(now)]
        if self.state in ACTIVE:
            driver = self.driver
            if driver is not None and driver.hang_after is not None:
                driver.hang_in = driver.hang_after  # the driver hangs up after the stop
            return self._end(now, self.fp.stop)
        return []

    def lock_sale(self, seq: int, lock_ref: str, now: datetime) -> None:
        """Lock a payable sale for an order (raises the domain refusal)."""
        self.buffer.lock(seq, lock_ref, now, _FOREVER)

    def unlock_sale(self, seq: int, lock_ref: str) -> None:
        """Release an order's lock."""
        self.buffer.unlock(seq, lock_ref)

    def clear_sale(self, seq: int, lock_ref: str) -> None:
        """The order paid: clear the sale (kept for re-reads)."""
        self.buffer.clear(seq, lock_ref)
        self._prune()

    def settle_at_kiosk(self, seq: int, now: datetime, lock_ref: str = "pos:1") -> Outgoing:
        """An attendant settles a payable sale in cash at the kiosk POS (sale/status report)."""
        self.buffer.lock(seq, lock_ref, now, _FOREVER)
        self.buffer.clear(seq, lock_ref)
        report = protocol.SaleStatusReport(
            event_seq=self.events.next(), ts=now, seq=seq, status="cleared", lock_ref=lock_ref
        )
        return Outgoing(TopicKind.FP_SALE_STATUS, self.number, report)

    def reread(self, from_seq: int, to_seq: int | None, now: datetime) -> list[Outgoing]:
        """Held sales from_seq..to_seq again, oldest first, flagged `reread`."""
        top = to_seq if to_seq is not None else self.ttc
        return [
            self.sale_message(h, now, reread=True)
            for seq, h in sorted(self.held.items())
            if from_seq <= seq <= top
        ]

    def sale_acked(self, ack: protocol.SaleAck) -> None:
        """The server stored (or refused) a sale: stop resending it."""
        held = self.held.get(ack.seq)
        if held is None:
            return
        held.acked = True
        held.refused = ack.reason if ack.status == "refused" else None
        self._prune()

    # -- time ----------------------------------------------------------------------------

    def tick(self, now: datetime, dt: float, *, online: bool = True) -> list[Outgoing]:
        """Advance the pump by `dt` simulated seconds (flow, timers, resends)."""
        out: list[Outgoing] = []
        out += self._timers(now, dt)
        out += self._flow(now, dt)
        if online:
            for held in self.unacked():
                held.resend_in -= dt
                if held.resend_in <= 1e-9:
                    held.resend_in = self.config.sale_resend_seconds
                    out.append(self.sale_message(held, now))
        return out

    def reconnected(self, now: datetime) -> list[Outgoing]:
        """After a (re)connect: the state, then every unacknowledged sale (section 3.1)."""
        out = [self.state_report(now)]
        for held in self.unacked():
            held.resend_in = self.config.sale_resend_seconds
            out.append(self.sale_message(held, now))
        return out

    def power_lost(self, now: datetime) -> None:
        """Power cut: a transaction that dispensed is saved (the meters counted it); the rest
        of the state is lost. The buffer, the meters and the TTC are non-volatile."""
        if self.tx is not None and self.tx.volume_ml > 0:
            self._record_sale(now)
        self._reset_state()

    def refresh_price_version(self, now: datetime) -> list[Outgoing]:
        """Show the station's price version once no transaction is running."""
        if self.tx is not None or self.price_version_shown == self.prices.version:
            return []
        self.price_version_shown = self.prices.version
        return [self.state_report(now)]

    # -- internals -----------------------------------------------------------------------

    def _timers(self, now: datetime, dt: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        if self.auto_authorise_in is not None and self.state is S.CALLING and not self.stuck:
            self.auto_authorise_in -= dt
            if self.auto_authorise_in <= 0:
                self.auto_authorise_in = None
                # Authorised at the station (auto mode): no order, no preset (3 -> 5 local).
                self.fp.authorise(preset=None, order_id=None, now=now, ttl=_FOREVER)
                out.append(self.state_report(now))
                self.fp.start()
                out += [self.state_report(now), *self._begin(now)]
        if self.state is S.AUTHORISED:
            events = self.fp.expire(now)  # an unused server authorisation ran out
            if events:
                out.append(self.state_report(now))
        if self.stuck and self.state is S.CALLING:
            self.stuck_for += dt
            if self.stuck_for >= self.config.stuck_error_after_seconds:
                self.fp.error("nozzle_stuck")
                out.append(self.state_report(now))
        driver = self.driver
        if driver is not None and driver.hang_in is not None:
            driver.hang_in -= dt
            if driver.hang_in <= 0:
                out += self.hang(now)
        if self.tx is None:
            out += self.refresh_price_version(now)
        return out

    def _begin(self, now: datetime) -> list[Outgoing]:
        """The pump motor starts for the lifted nozzle (state Started)."""
        nozzle = self.fp.nozzle
        assert nozzle is not None
        grade = self.grades[nozzle]
        price = self.prices.price(grade)
        auth = self.fp.authorisation
        limit = MAX_TRANSACTION_ML
        if auth is not None and auth.preset is not None:
            limit = min(limit, preset_limit_ml(auth.preset, price))
        if self.driver is not None and self.driver.target_ml is not None:
            limit = min(limit, self.driver.target_ml)
        self.tx = Transaction(
            nozzle=nozzle,
            grade=grade,
            unit_price_fen=price,
            price_version=self.prices.version,
            auth_ref=auth.order_id if auth else None,
            limit_ml=limit,
            rate_ml_s=self.rng.uniform(self.config.flow_min_ml_s, self.config.flow_max_ml_s),
            start_in=self.config.start_delay_seconds,
        )
        return []

    def _flow(self, now: datetime, dt: float) -> list[Outgoing]:
        tx = self.tx
        if tx is None or self.state not in ACTIVE:
            return []
        out: list[Outgoing] = []
        if not tx.flowing and tx.volume_ml == 0 and tx.limit_ml > 0:
            tx.start_in -= dt
            if tx.start_in > 0:
                return []
            tx.flowing = True
            tx.started_at = now
            dt = -tx.start_in  # the part of this tick after the motor reached speed
        if not tx.flowing:
            return []
        tx.volume = min(tx.volume + tx.rate_ml_s * dt, float(tx.limit_ml))
        tx.since_progress += dt
        before = self.state
        self.fp.flow(
            volume_ml=tx.volume_ml, amount_fen=tx.amount_fen, unit_price_fen=tx.unit_price_fen
        )
        if self.state is not before:
            out.append(self.state_report(now))
        reached = tx.volume_ml >= tx.limit_ml
        if reached or tx.since_progress >= self.config.progress_seconds - 1e-9:
            out.append(self._progress(now))
        if reached:
            tx.flowing = False  # preset or the driver's target: the pump stops exactly here
            if self.driver is not None and self.driver.hang_after is not None:
                self.driver.hang_in = self.driver.hang_after
        return out

    def _end(self, now: datetime, transition: Callable[[], object]) -> list[Outgoing]:
        """Leave the transaction through `transition`: final progress, state, then the sale."""
        out: list[Outgoing] = []
        tx = self.tx
        if tx is not None and tx.flowing and tx.volume_ml > 0:
            out.append(self._progress(now))
        transition()
        held = self._record_sale(now) if tx is not None and tx.volume_ml > 0 else None
        self.tx = None
        out.append(self.state_report(now))  # carries the new last_seq
        if held is not None:
            out.append(self.sale_message(held, now))
        return out

    def _record_sale(self, now: datetime) -> HeldSale:
        tx = self.tx
        assert tx is not None
        volume, amount = tx.volume_ml, tx.amount_fen
        meters = self.totals[tx.nozzle]
        meters.volume_ml += volume
        meters.amount_fen += amount
        self.ttc += 1
        report = protocol.SaleReport(
            seq=self.ttc,
            ts=now,
            nozzle=tx.nozzle,
            grade=tx.grade,
            volume_ml=volume,
            amount_fen=amount,
            unit_price_fen=tx.unit_price_fen,
            totalizer_volume_ml=meters.volume_ml,
            totalizer_amount_fen=meters.amount_fen,
            started_at=tx.started_at,
            ended_at=max(now, tx.started_at) if tx.started_at else now,
            auth_ref=tx.auth_ref,
            price_version=tx.price_version,
        )
        self.buffer.record(report.to_sale(), volume_tolerance_ml=1)
        held = HeldSale(report, resend_in=self.config.sale_resend_seconds)
        self.held[self.ttc] = held
        self.tx = None
        if self.on_sale is not None:
            self.on_sale(report)
        return held

    def _prune(self) -> None:
        """Forget the oldest cleared, acknowledged sales beyond `keep_sales`."""
        excess = len(self.held) - self.config.keep_sales
        if excess <= 0:
            return
        for seq in sorted(self.held):
            if excess <= 0:
                break
            sale = self.buffer.find(seq)
            if self.held[seq].acked and sale is not None and sale.status is SaleStatus.CLEARED:
                del self.held[seq]
                self.buffer.sales.remove(sale)
                excess -= 1


class Reject(Exception):
    """A command refused with a protocol reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
