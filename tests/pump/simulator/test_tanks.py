"""The simulated tank gauge, stepped by hand: strapping, draws, readings, alarms, deliveries."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from forecourt.kit import clock
from forecourt.pump import protocol
from forecourt.pump.protocol import TopicKind
from forecourt.pump.simulator import (
    FpSpec,
    NozzleSpec,
    PumpSim,
    TankConfig,
    TankGauge,
    TankSim,
    TankSpec,
)
from forecourt.pump.simulator.pump import EventCounter, Outgoing, PriceBook
from forecourt.pump.simulator.tanks import diameter_mm, height_of, volume_15c, volume_at

CAPACITY = 30_000_000
EXACT = TankConfig(gauge_noise=0.0, loss_ml_per_hour=0.0)


def tank(
    volume_ml: int,
    *,
    config: TankConfig = EXACT,
    nozzles: tuple[int, ...] = (),
    number: int = 1,
    grade: str = "92",
    events: EventCounter | None = None,
) -> TankSim:
    return TankSim(
        "KM0001",
        TankSpec(number, grade, CAPACITY, volume_ml, nozzles),
        events or EventCounter(1_000),
        config=config,
        reading_seconds=60.0,
        rng=random.Random(5),
    )


def run(sim: TankSim | TankGauge, seconds: float, *, dt: float = 0.5) -> list[Outgoing]:
    out: list[Outgoing] = []
    for _ in range(round(seconds / dt)):
        out += sim.tick(clock.now(), dt)
    return out


def readings(out: list[Outgoing]) -> list[protocol.TankReading]:
    return [m.message for m in out if isinstance(m.message, protocol.TankReading)]


def deliveries(out: list[Outgoing]) -> list[protocol.TankDelivery]:
    return [m.message for m in out if isinstance(m.message, protocol.TankDelivery)]


def test_strapping_is_a_monotonic_horizontal_cylinder() -> None:
    d = diameter_mm(CAPACITY)
    assert 2_481 < d < 2_482  # 30 m³, 2.5 times as long as wide
    assert volume_at(0.0, CAPACITY) == 0.0
    assert volume_at(d, CAPACITY) == pytest.approx(CAPACITY)
    assert volume_at(d / 2, CAPACITY) == pytest.approx(CAPACITY / 2)
    heights = [height_of(v, CAPACITY) for v in range(0, CAPACITY + 1, 250_000)]
    assert all(a < b for a, b in itertools.pairwise(heights))
    assert heights[0] == pytest.approx(0.0, abs=1e-3)
    assert heights[-1] == pytest.approx(d, abs=1e-3)
    for volume in (1_000, 3_000_000, 17_500_000, 29_990_000):
        assert volume_at(height_of(volume, CAPACITY), CAPACITY) == pytest.approx(volume, abs=1)
    assert height_of(-5, CAPACITY) == pytest.approx(0.0, abs=1e-3)  # clamped to the tank
    assert height_of(CAPACITY * 2, CAPACITY) == pytest.approx(d, abs=1e-3)


def test_volume_at_15c_by_grade() -> None:
    assert volume_15c(10_000_000, "92", 15.0) == 10_000_000
    assert volume_15c(10_000_000, "92", 25.0) == 9_880_000
    assert volume_15c(10_000_000, "0", 25.0) == 9_917_000
    assert volume_15c(10_000_000, "95", 5.0) == 10_120_000


def test_reading_fields_match_the_protocol() -> None:
    sim = tank(12_000_000)
    message = sim.reading(clock.now())
    assert (message.kind, message.number) == (TopicKind.TANK_READING, 1)
    reading = message.message
    assert isinstance(reading, protocol.TankReading)
    assert reading.event_seq == 1_001
    assert reading.grade == "92"
    assert reading.product_volume_ml == 12_000_000  # no gauge noise configured
    assert 2.0 - 0.2 <= reading.water_height_mm <= 8.0 + 0.2
    assert reading.water_volume_ml == round(volume_at(reading.water_height_mm, CAPACITY))
    total = 12_000_000 + reading.water_volume_ml
    assert reading.product_height_mm == pytest.approx(height_of(total, CAPACITY), abs=0.06)
    assert 18.0 <= reading.temperature_c <= 25.0
    assert reading.product_volume_15c_ml == volume_15c(12_000_000, "92", reading.temperature_c)
    assert reading.ullage_ml == 28_500_000 - 12_000_000 - reading.water_volume_ml
    assert reading.alarms == []
    topic = protocol.build_topic(TopicKind.TANK_READING, "KM0001", 1)
    decoded = protocol.decode(topic, protocol.encode(reading))
    assert decoded.message == reading


def test_readings_every_interval_with_small_noise_and_a_slow_loss() -> None:
    config = TankConfig(loss_ml_per_hour=3_600.0)  # 1 ml per simulated second
    sim = tank(20_000_000, config=config)
    out = run(sim, 3_600.0)
    found = readings(out)
    assert 60 <= len(found) <= 61  # every 60 s, the first within 5 s of power-on
    seqs = [r.event_seq for r in found]
    assert seqs == sorted(set(seqs))
    assert sim.lost_ml == pytest.approx(3_600.0)
    assert sim.volume == pytest.approx(20_000_000 - 3_600.0)
    for reading in found:
        assert abs(reading.product_volume_ml - 20_000_000) <= 20_000_000 * 0.0005 + 3_601
    temperatures = [r.temperature_c for r in found]
    assert all(18.0 <= t <= 25.0 for t in temperatures)
    assert max(abs(a - b) for a, b in itertools.pairwise(temperatures)) < 0.5


def test_gauge_routes_sales_to_the_nozzles_tank_else_the_fullest_of_the_grade() -> None:
    specs = (
        TankSpec(1, "92", CAPACITY, 10_000_000, nozzles=(1,)),
        TankSpec(2, "95", CAPACITY, 8_000_000, nozzles=(2,)),
        TankSpec(3, "95", CAPACITY, 9_000_000),
    )
    gauge = TankGauge("KM0001", specs, EventCounter(0), config=EXACT, rng=random.Random(1))
    prices = PriceBook({"92": 776, "95": 832, "98": 900})
    pump = PumpSim(
        FpSpec(1, (NozzleSpec(1, "92"), NozzleSpec(2, "95"), NozzleSpec(4, "95"))),
        prices,
        EventCounter(0),
        on_sale=gauge.sale,
    )
    for nozzle, volume in ((1, 30_000), (2, 40_000), (4, 25_000)):
        pump.lift(nozzle, clock.now(), target_ml=volume)
        for _ in range(200):
            pump.tick(clock.now(), 0.5)
        pump.hang(clock.now())
    volumes = {n: t.volume_ml for n, t in gauge.tanks.items()}
    # Nozzle 4 has no tank of its own: the fullest 95 tank (3) gives it.
    assert volumes == {1: 9_970_000, 2: 7_960_000, 3: 8_975_000}
    assert gauge.tank_for(9, "98") is None  # a grade without a gauge: nothing to draw


def test_low_product_alarm_is_reported_at_once_and_clears() -> None:
    config = TankConfig(gauge_noise=0.0, loss_ml_per_hour=0.0, delivery_after_seconds=10_000.0)
    sim = tank(4_600_000, config=config)  # 15.3 %
    run(sim, 60.0)
    sim.draw(200_000)  # 14.7 %: below the 15 % alarm level
    (alarm,) = readings(sim.tick(clock.now(), 0.5))
    assert alarm.alarms == ["low_product"]
    assert readings(sim.tick(clock.now(), 0.5)) == []  # no change: back to the interval
    sim.volume = 29_000_000.0  # 96.7 %
    (high,) = readings(sim.tick(clock.now(), 0.5))
    assert high.alarms == ["high_product"]
    sim.volume = 20_000_000.0
    (clear,) = readings(sim.tick(clock.now(), 0.5))
    assert clear.alarms == []


def test_no_truck_while_the_stock_is_above_the_reorder_level() -> None:
    sim = tank(6_100_000)  # 20.3 %
    out = run(sim, 7_200.0, dt=5.0)
    assert sim.truck_in is None
    assert sim.unloading is None
    assert deliveries(out) == []


def test_delivery_below_the_reorder_level_is_published_until_acked() -> None:
    config = TankConfig(
        gauge_noise=0.0,
        loss_ml_per_hour=0.0,
        delivery_after_seconds=600.0,
        delivery_seconds=1_200.0,
        delivery_resend_seconds=60.0,
    )
    events = EventCounter(5_000)
    sim = tank(6_100_000, config=config, events=events)
    run(sim, 120.0)
    assert sim.truck_in is None
    sim.draw(200_000)  # 19.7 %: a truck is ordered
    assert sim.truck_in == 600.0
    before_arrival = run(sim, 600.0)
    assert deliveries(before_arrival) == []
    assert len(readings(before_arrival)) == 10
    assert sim.unloading is not None
    start = sim.volume_ml
    assert start == 5_900_000
    run(sim, 600.0)
    sim.draw(50_000)  # a sale while the truck unloads
    during = run(sim, 599.0)
    assert readings(during) == []  # periodic readings pause while unloading
    finish = run(sim, 1.5)
    (delivery,) = deliveries(finish)
    (after,) = readings(finish)
    assert [m.kind for m in finish] == [TopicKind.TANK_DELIVERY, TopicKind.TANK_READING]
    # Filled to 85 % of 30 m³ in whole cubic metres: 25.5 - 5.9 -> 19 m³.
    assert round(sim.volume) == 5_900_000 + 19_000_000 - 50_000
    assert (delivery.start_volume_ml, delivery.end_volume_ml) == (5_900_000, 24_850_000)
    assert delivery.volume_ml == 19_000_000  # end - start + sold during the delivery
    assert delivery.delivery_id == f"KM0001-T1-{after.event_seq - 1}"
    assert delivery.started_at <= delivery.ended_at
    assert (after.product_volume_ml, after.event_seq) == (24_850_000, events.value)
    # Resent every 60 s with identical content, then again after a reconnect, until acked.
    (resent,) = deliveries(run(sim, 60.0))
    assert resent.model_copy(update={"ts": delivery.ts}) == delivery
    (reconnect,) = deliveries(sim.reconnected(clock.now()))
    assert reconnect.model_copy(update={"ts": delivery.ts}) == delivery
    ack = protocol.DeliveryAck(delivery_id=delivery.delivery_id, status="accepted", ts=clock.now())
    sim.delivery_acked(ack)
    assert sim.held == {}
    assert list(sim.acks) == [ack]
    assert deliveries(run(sim, 600.0)) == []
    assert sim.reconnected(clock.now()) == []
    assert sim.truck_in is None  # full again: no new order


def test_delivery_made_offline_is_sent_on_reconnect() -> None:
    config = TankConfig(
        gauge_noise=0.0, loss_ml_per_hour=0.0, delivery_after_seconds=10.0, delivery_seconds=20.0
    )
    gauge = TankGauge(
        "KM0001", (TankSpec(2, "95", CAPACITY, 3_000_000),), EventCounter(0), config=config
    )
    out: list[Outgoing] = []
    for _ in range(100):
        out += gauge.tick(clock.now() + timedelta(seconds=1), 0.5, online=False)
    assert out == []  # nothing goes out while the uplink is down
    (held,) = gauge.unacked()
    assert held.volume_ml == 22_000_000
    (again,) = deliveries(gauge.reconnected(clock.now()))
    assert again.delivery_id == held.delivery_id
    gauge.delivery_acked(
        2, protocol.DeliveryAck(delivery_id=held.delivery_id, status="duplicate", ts=clock.now())
    )
    assert gauge.unacked() == []
