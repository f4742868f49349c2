"""The simulated tank gauge (ATG): stock drawn by sales, readings, alarms and deliveries (卸油).

Pure like `pump.py`: no I/O and no clock of its own. Methods take `now` (the wall-clock time
written into `ts`) and `tick` takes `dt` in simulated seconds; they return the messages the
gateway must publish, in order.

Each tank holds a true gross volume. A completed sale draws its volume from the tank its
nozzle is piped to (the fullest tank of the grade for a nozzle without one); a slow loss
(evaporation, a weep) takes `loss_ml_per_hour` more. The gauge reports the true volume with a
noise of ± `gauge_noise` (0.05 %), so the server's measured-minus-book variance shows the
noise around a slowly growing loss, far below the variance alert by default.

Strapping: every tank is a horizontal cylinder with flat ends, `ASPECT` times as long as it is
wide, whose diameter follows from its capacity. The volume below a height h is the circle
segment's area times the length; the height of a volume is found by bisection. Water lies at
the bottom, so the product height is the height of product plus water.

When the true volume falls below `reorder_below` of capacity a truck is ordered; it arrives
`delivery_after_seconds` later and unloads for `delivery_seconds`, up to `fill_to` of capacity
(whole `truck_step_ml`). Periodic readings pause while it unloads: the server counts a
delivery into book stock only at its `ended_at`, so a reading in the middle would show the
part already unloaded as a gain. The delivery is then published with measured start and end
volumes and resent every `delivery_resend_seconds` and after each reconnect until a
DeliveryAck arrives (section 8), followed by a fresh reading.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from forecourt.pump import protocol
from forecourt.pump.protocol import TopicKind
from forecourt.pump.simulator.pump import EventCounter, Outgoing

ASPECT = 2.5  # length / diameter of the simulated tanks
DIESEL = frozenset({"0", "-10", "-20", "-35", "-50"})
# Volume correction to 15 °C (1/°C): roughly what the tables give near 15-25 °C.
EXPANSION_GASOLINE = 0.0012
EXPANSION_DIESEL = 0.00083


@dataclass(frozen=True)
class TankSpec:
    """A tank as the gauge knows it: grade, capacity, the stock in it and its nozzles."""

    number: int
    grade: str
    capacity_ml: int
    volume_ml: int
    nozzles: tuple[int, ...] = ()


@dataclass(frozen=True)
class TankConfig:
    """Gauge physics, alarms and deliveries; fractions of capacity, times in simulated s."""

    gauge_noise: float = 0.0005
    loss_ml_per_hour: float = 250.0
    water_mm: tuple[float, float] = (2.0, 8.0)
    temperature_c: tuple[float, float] = (18.0, 25.0)
    temperature_drift_c_per_hour: float = 0.4
    low_product: float = 0.15
    high_product: float = 0.95
    high_water_mm: float = 50.0
    safe_fill: float = 0.95
    reorder_below: float = 0.20
    fill_to: float = 0.85
    truck_step_ml: int = 1_000_000
    delivery_after_seconds: float = 1800.0
    delivery_seconds: float = 1200.0
    delivery_resend_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.gauge_noise < 0.01:
            raise ValueError("gauge_noise must be in [0, 0.01)")
        if not 0 < self.reorder_below < self.fill_to <= self.safe_fill <= 1:
            raise ValueError("fractions must satisfy 0 < reorder_below < fill_to <= safe_fill <= 1")
        if self.delivery_resend_seconds <= 0 or self.truck_step_ml <= 0:
            raise ValueError("delivery_resend_seconds and truck_step_ml must be positive")


# -- strapping ----------------------------------------------------------------------------------


def diameter_mm(capacity_ml: int) -> float:
    """Diameter of the horizontal cylinder that holds `capacity_ml`."""
    return math.cbrt(4.0 * capacity_ml * 1000.0 / (math.pi * ASPECT))


def volume_at(height_mm: float, capacity_ml: int) -> float:
    """Millilitres below `height_mm` in a tank of `capacity_ml` (the strapping table)."""
    d = diameter_mm(capacity_ml)
    r = d / 2.0
    h = min(max(height_mm, 0.0), d)
    segment = r * r * math.acos((r - h) / r) - (r - h) * math.sqrt(max(2.0 * r * h - h * h, 0.0))
    return segment * ASPECT * d / 1000.0


def height_of(volume_ml: float, capacity_ml: int) -> float:
    """Height in mm of `volume_ml` in a tank of `capacity_ml` (strapping inverted)."""
    target = min(max(volume_ml, 0.0), float(capacity_ml))
    low, high = 0.0, diameter_mm(capacity_ml)
    for _ in range(40):
        mid = (low + high) / 2.0
        if volume_at(mid, capacity_ml) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def volume_15c(volume_ml: int, grade: str, temperature_c: float) -> int:
    """Net volume at 15 °C of a gross volume at `temperature_c`."""
    beta = EXPANSION_DIESEL if grade in DIESEL else EXPANSION_GASOLINE
    return max(round(volume_ml * (1.0 - beta * (temperature_c - 15.0))), 0)


# -- one tank -----------------------------------------------------------------------------------


@dataclass
class HeldDelivery:
    """A delivery the server has not acknowledged yet."""

    report: protocol.TankDelivery
    resend_in: float


@dataclass
class Unloading:
    """A truck emptying into the tank."""

    started_at: datetime
    start_volume_ml: int
    left_ml: float
    rate_ml_s: float
    sold_ml: int = 0


@dataclass
class TankSim:
    """One tank and its gauge probe."""

    code: str
    spec: TankSpec
    events: EventCounter
    config: TankConfig = field(default_factory=TankConfig)
    reading_seconds: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.reading_seconds <= 0 or self.spec.capacity_ml <= 0:
            raise ValueError("reading_seconds and capacity_ml must be positive")
        self.number = self.spec.number
        self.grade = self.spec.grade
        self.capacity_ml = self.spec.capacity_ml
        self.volume = float(min(max(self.spec.volume_ml, 0), self.capacity_ml))
        self.water_mm = self.rng.uniform(*self.config.water_mm)
        low, high = self.config.temperature_c
        self.temperature_c = self.rng.uniform(low + (high - low) / 4, high - (high - low) / 4)
        self.reading_in = self.rng.uniform(0.0, min(self.reading_seconds, 5.0))
        self.since_drift = 0.0
        self.alarms: tuple[str, ...] = ()
        self.truck_in: float | None = None
        self.unloading: Unloading | None = None
        self.held: dict[str, HeldDelivery] = {}
        self.acks: deque[protocol.DeliveryAck] = deque(maxlen=100)
        self.lost_ml = 0.0
        self._order()

    # -- views ---------------------------------------------------------------------------

    @property
    def volume_ml(self) -> int:
        """The true gross volume in whole millilitres."""
        return math.floor(self.volume)

    def measured_ml(self) -> int:
        """What the probe reads now: the true volume ± the gauge noise."""
        noise = self.config.gauge_noise
        measured = round(self.volume * (1.0 + self.rng.uniform(-noise, noise)))
        return min(max(measured, 0), self.capacity_ml)

    def alarms_now(self) -> tuple[str, ...]:
        """Active alarms from the true level (so noise does not make them flap)."""
        found: list[str] = []
        share = self.volume / self.capacity_ml
        if share >= self.config.high_product:
            found.append("high_product")
        if share < self.config.low_product:
            found.append("low_product")
        if self.water_mm >= self.config.high_water_mm:
            found.append("high_water")
        return tuple(found)

    # -- product flows ---------------------------------------------------------------------

    def draw(self, volume_ml: int) -> None:
        """A completed sale took `volume_ml` from this tank (a dry tank stays at 0)."""
        self.volume = max(self.volume - volume_ml, 0.0)
        if self.unloading is not None:
            self.unloading.sold_ml += volume_ml
        self._order()

    def _order(self) -> None:
        """Order a truck once the stock is below the reorder level and none is on its way."""
        low = self.volume < self.config.reorder_below * self.capacity_ml
        if low and self.truck_in is None and self.unloading is None:
            self.truck_in = self.config.delivery_after_seconds

    def _drift(self, dt: float) -> None:
        """Temperature wanders slowly around the middle of its range."""
        low, high = self.config.temperature_c
        hours = dt / 3600.0
        pull = (low + high) / 2.0 - self.temperature_c
        step = self.rng.gauss(0.0, self.config.temperature_drift_c_per_hour * math.sqrt(hours))
        self.temperature_c = min(max(self.temperature_c + pull * min(hours, 1.0) + step, low), high)

    # -- messages --------------------------------------------------------------------------

    def reading(self, now: datetime) -> Outgoing:
        """A gauge reading now (also records the alarms it carries)."""
        self._drift(self.since_drift)
        self.since_drift = 0.0
        measured = self.measured_ml()
        water_mm = round(max(self.water_mm + self.rng.uniform(-0.2, 0.2), 0.0), 1)
        water_ml = round(volume_at(water_mm, self.capacity_ml))
        product_mm = height_of(measured + water_ml, self.capacity_ml)
        temperature = round(self.temperature_c, 1)
        safe = round(self.config.safe_fill * self.capacity_ml)
        self.alarms = self.alarms_now()
        report = protocol.TankReading(
            event_seq=self.events.next(),
            ts=now,
            grade=self.grade,
            product_height_mm=round(product_mm, 1),
            water_height_mm=water_mm,
            temperature_c=temperature,
            product_volume_ml=measured,
            product_volume_15c_ml=volume_15c(measured, self.grade, temperature),
            water_volume_ml=water_ml,
            ullage_ml=max(safe - measured - water_ml, 0),
            alarms=list(self.alarms),
        )
        self.reading_in = self.reading_seconds
        return Outgoing(TopicKind.TANK_READING, self.number, report)

    def delivery_message(self, held: HeldDelivery, now: datetime) -> Outgoing:
        """A publication of a held delivery: identical content, new `ts`."""
        held.resend_in = self.config.delivery_resend_seconds
        report = held.report.model_copy(update={"ts": now})
        return Outgoing(TopicKind.TANK_DELIVERY, self.number, report)

    def delivery_acked(self, ack: protocol.DeliveryAck) -> None:
        """The server stored (or refused) a delivery: stop resending it."""
        self.acks.append(ack)
        self.held.pop(ack.delivery_id, None)

    def reconnected(self, now: datetime) -> list[Outgoing]:
        """After a (re)connect: every unacknowledged delivery, oldest first."""
        return [self.delivery_message(h, now) for h in self.held.values()]

    # -- time ------------------------------------------------------------------------------

    def tick(self, now: datetime, dt: float, *, online: bool = True) -> list[Outgoing]:
        """Advance by `dt` simulated seconds: loss, trucks, resends and readings."""
        loss = min(self.config.loss_ml_per_hour * dt / 3600.0, self.volume)
        self.volume -= loss
        self.lost_ml += loss
        self.since_drift += dt
        delivered = self._truck(now, dt)
        out = delivered if online else []  # held: sent again on reconnect
        if online:
            for held in list(self.held.values()):
                held.resend_in -= dt
                if held.resend_in <= 1e-9:
                    out.append(self.delivery_message(held, now))
        self.reading_in -= dt
        due = self.reading_in <= 1e-9 or self.alarms_now() != self.alarms
        if online and due and self.unloading is None:
            out.append(self.reading(now))
        return out

    def _truck(self, now: datetime, dt: float) -> list[Outgoing]:
        """A truck on its way arrives and starts unloading; an unloading one goes on or ends."""
        if self.truck_in is not None:
            self.truck_in -= dt
            if self.truck_in > 1e-9:
                return []
            self.truck_in = None
            step = self.config.truck_step_ml
            room = self.config.fill_to * self.capacity_ml - self.volume
            planned = math.floor(room / step) * step
            if planned <= 0:
                return []
            self.unloading = Unloading(
                started_at=now,
                start_volume_ml=self.measured_ml(),
                left_ml=float(planned),
                rate_ml_s=planned / max(self.config.delivery_seconds, 1e-6),
            )
            return []
        unloading = self.unloading
        if unloading is None:
            return []
        pour = min(unloading.left_ml, unloading.rate_ml_s * dt, self.capacity_ml - self.volume)
        self.volume += pour
        unloading.left_ml -= pour
        if unloading.left_ml > 1e-6 and self.volume < self.capacity_ml:
            return []
        return [self._delivered(unloading, now)]

    def _delivered(self, unloading: Unloading, now: datetime) -> Outgoing:
        """The truck is empty: hold the delivery until acknowledged and read at once."""
        self.unloading = None
        end = self.measured_ml()
        volume = min(max(end - unloading.start_volume_ml + unloading.sold_ml, 0), self.capacity_ml)
        report = protocol.TankDelivery(
            delivery_id=f"{self.code}-T{self.number}-{self.events.next()}",
            ts=now,
            grade=self.grade,
            started_at=unloading.started_at,
            ended_at=max(now, unloading.started_at),
            start_volume_ml=unloading.start_volume_ml,
            end_volume_ml=end,
            volume_ml=volume,
            volume_15c_ml=volume_15c(volume, self.grade, self.temperature_c),
        )
        held = HeldDelivery(report, resend_in=self.config.delivery_resend_seconds)
        self.held[report.delivery_id] = held
        self.reading_in = 0.0
        self._order()
        return self.delivery_message(held, now)


# -- the station's gauge ------------------------------------------------------------------------


class TankGauge:
    """Every tank of a station: routes sales to tanks and runs their probes."""

    def __init__(
        self,
        code: str,
        tanks: Sequence[TankSpec],
        events: EventCounter,
        *,
        config: TankConfig | None = None,
        reading_seconds: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        rng = rng or random.Random()
        self.tanks: dict[int, TankSim] = {
            spec.number: TankSim(
                code,
                spec,
                events,
                config=config or TankConfig(),
                reading_seconds=reading_seconds,
                rng=rng,
            )
            for spec in tanks
        }
        self._by_nozzle = {n: tank for tank in self.tanks.values() for n in tank.spec.nozzles}

    def tank_for(self, nozzle: int, grade: str) -> TankSim | None:
        """The tank a nozzle draws from: its own, else the fullest tank of its grade."""
        tank = self._by_nozzle.get(nozzle)
        if tank is not None and tank.grade == grade:
            return tank
        same = [t for t in self.tanks.values() if t.grade == grade]
        return max(same, key=lambda t: (t.volume, -t.number)) if same else None

    def sale(self, report: protocol.SaleReport) -> None:
        """A completed sale draws its volume from its tank (none: a grade without a gauge)."""
        tank = self.tank_for(report.nozzle, report.grade)
        if tank is not None:
            tank.draw(report.volume_ml)

    def delivery_acked(self, number: int, ack: protocol.DeliveryAck) -> None:
        """A DeliveryAck for tank `number`."""
        tank = self.tanks.get(number)
        if tank is not None:
            tank.delivery_acked(ack)

    def unacked(self) -> list[protocol.TankDelivery]:
        """Deliveries waiting for an ack, per tank, oldest first."""
        return [h.report for t in self.tanks.values() for h in t.held.values()]

    def reconnected(self, now: datetime) -> list[Outgoing]:
        """After a (re)connect: every unacknowledged delivery."""
        return [m for tank in self.tanks.values() for m in tank.reconnected(now)]

    def tick(self, now: datetime, dt: float, *, online: bool = True) -> list[Outgoing]:
        """Advance every tank by `dt` simulated seconds."""
        return [m for tank in self.tanks.values() for m in tank.tick(now, dt, online=online)]
