"""The simulated pump on its own: physics, presets, meters, TTC, buffer and faults."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from forecourt.kit.money import amount_for_volume
from forecourt.pump import protocol
from forecourt.pump.domain import FPState, Preset, SaleLocked
from forecourt.pump.protocol import TopicKind
from forecourt.pump.simulator.pump import (
    EventCounter,
    FpSpec,
    NozzleSpec,
    Outgoing,
    PriceBook,
    PumpConfig,
    PumpSim,
    Reject,
    SimError,
    preset_limit_ml,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)
PRICE_95 = 845


def make_pump(*, auto: bool = True, seed: int = 1, **config: object) -> PumpSim:
    spec = FpSpec(
        number=2,
        nozzles=(
            NozzleSpec(3, "95", totalizer_volume_ml=12_345_678, totalizer_amount_fen=10_234_567),
            NozzleSpec(4, "92"),
        ),
        last_seq=1040,
    )
    return PumpSim(
        spec,
        PriceBook({"95": PRICE_95, "92": 781}, version=7),
        EventCounter(1_000),
        config=PumpConfig(auto_authorise=auto, **config),  # type: ignore[arg-type]
        rng=random.Random(seed),
    )


def run(pump: PumpSim, seconds: float, step: float = 0.1) -> list[Outgoing]:
    out: list[Outgoing] = []
    for i in range(round(seconds / step)):
        out += pump.tick(T0 + timedelta(seconds=i * step), step)
    return out


def of(out: list[Outgoing], kind: TopicKind) -> list[protocol.Message]:
    return [o.message for o in out if o.kind is kind]


def states(out: list[Outgoing]) -> list[int]:
    return [m.state for m in of(out, TopicKind.FP_STATE)]  # type: ignore[union-attr]


def authorise(**fields: object) -> protocol.AuthoriseCommand:
    values: dict[str, object] = {
        "command_id": "c1",
        "type": "authorise",
        "ts": T0,
        "valid_until": T0 + timedelta(minutes=2),
        "fp": 2,
        "auth_ref": "ord_1",
    }
    values.update(fields)
    return protocol.AuthoriseCommand(**values)  # type: ignore[arg-type]


def test_post_pay_auto_authorise_flows_at_half_to_point_eight_litres_per_second() -> None:
    pump = make_pump()
    out = pump.lift(3, T0, target_ml=30_000, hang_after=None)
    out += run(pump, 10)
    # Calling -> Authorised (local) -> Started -> Fuelling
    assert states(out) == [4, 5, 6, 8]
    progress = of(out, TopicKind.FP_PROGRESS)
    volumes = [p.volume_ml for p in progress]  # type: ignore[union-attr]
    # one progress every 0.5 s of flow; each step of 0.5 s moves 250..400 ml
    steps = [b - a for a, b in itertools.pairwise(volumes)]
    assert len(progress) >= 15
    assert all(250 <= s <= 400 for s in steps[1:-1]), steps
    assert all(p.auth_ref is None and p.unit_price_fen == PRICE_95 for p in progress)  # type: ignore[union-attr]
    assert pump.tx is not None
    assert 500 <= pump.tx.rate_ml_s <= 800


def test_flow_rate_stays_in_range_over_many_transactions() -> None:
    pump = make_pump(seed=7, buffer_capacity=1000)
    rates = []
    for _ in range(200):
        pump.lift(3, T0)
        run(pump, 2)
        assert pump.tx is not None
        rates.append(pump.tx.rate_ml_s)
        pump.hang(T0)
    assert min(rates) >= 500
    assert max(rates) <= 800
    assert max(rates) - min(rates) > 200  # actually random, not a constant


def test_stops_exactly_at_a_preset_amount_and_reports_the_sale() -> None:
    pump = make_pump(auto=False)
    out = pump.authorise(authorise(preset={"kind": "amount_fen", "value": 30_000}, nozzle=3), T0)
    assert states(out) == [5]
    out = pump.lift(3, T0)
    out += run(pump, 120)
    final = of(out, TopicKind.FP_PROGRESS)[-1]
    assert (final.volume_ml, final.amount_fen) == (35_503, 30_000)  # type: ignore[union-attr]
    assert final.auth_ref == "ord_1"  # type: ignore[union-attr]
    assert pump.state is FPState.FUELLING  # stopped, nozzle still in the driver's hand
    out = pump.hang(T0 + timedelta(minutes=2))
    assert states(out) == [3]
    assert of(out, TopicKind.FP_STATE)[0].last_seq == 1041  # type: ignore[union-attr]
    (sale,) = of(out, TopicKind.FP_SALE)
    assert isinstance(sale, protocol.SaleReport)
    assert (sale.seq, sale.volume_ml, sale.amount_fen) == (1041, 35_503, 30_000)
    assert (sale.totalizer_volume_ml, sale.totalizer_amount_fen) == (12_381_181, 10_264_567)
    assert sale.auth_ref == "ord_1"
    assert sale.price_version == 7
    assert sale.amount_fen == amount_for_volume(sale.volume_ml, PRICE_95)
    # the buffer locks a sale made under an order to that order from the start
    assert pump.buffer.get(1041).locked_by == "ord_1"


def test_stops_exactly_at_a_preset_volume() -> None:
    pump = make_pump(auto=False)
    pump.authorise(authorise(preset={"kind": "volume_ml", "value": 20_000}), T0)
    pump.lift(4, T0)
    out = run(pump, 60)
    final = of(out, TopicKind.FP_PROGRESS)[-1]
    assert (final.volume_ml, final.amount_fen) == (20_000, 15_620)  # type: ignore[union-attr]


@pytest.mark.parametrize("price", [1, 7, 599, 845, 999, 1000, 1234, 9999])
@pytest.mark.parametrize("amount", [1, 99, 30_000, 77_777])
def test_preset_limit_is_the_first_volume_reaching_the_amount(price: int, amount: int) -> None:
    limit = preset_limit_ml(Preset.amount(amount), price)
    assert amount_for_volume(limit, price) <= amount
    assert amount_for_volume(limit + 1, price) > amount or (
        amount_for_volume(limit, price) == amount
    )
    if price <= 1000:  # one ml never adds more than a fen: the amount is hit exactly
        assert amount_for_volume(limit, price) == amount
        assert amount_for_volume(limit - 1, price) < amount


def test_totalizers_grow_by_each_sale_and_ttc_increments() -> None:
    pump = make_pump()
    sales: list[protocol.SaleReport] = []
    for target in (20_000, 33_333, 41_001):
        pump.lift(3, T0, target_ml=target)
        run(pump, 100)
        out = pump.hang(T0)
        sales += of(out, TopicKind.FP_SALE)  # type: ignore[arg-type]
    assert [s.seq for s in sales] == [1041, 1042, 1043]
    assert [s.volume_ml for s in sales] == [20_000, 33_333, 41_001]
    volume, amount = 12_345_678, 10_234_567
    for s in sales:
        volume += s.volume_ml
        amount += s.amount_fen
        assert (s.totalizer_volume_ml, s.totalizer_amount_fen) == (volume, amount)
        assert s.amount_fen == amount_for_volume(s.volume_ml, PRICE_95)
        assert s.auth_ref is None
    assert pump.payable_count() == 3


def test_unacknowledged_sale_is_resent_until_acked_with_identical_content() -> None:
    pump = make_pump(sale_resend_seconds=5.0)
    pump.lift(3, T0, target_ml=10_000)
    run(pump, 40)
    (first,) = of(pump.hang(T0), TopicKind.FP_SALE)
    resent = of(run(pump, 20.05), TopicKind.FP_SALE)
    assert len(resent) == 4
    strip = {"ts", "reread"}
    assert all(r.model_dump(exclude=strip) == first.model_dump(exclude=strip) for r in resent)
    pump.sale_acked(protocol.SaleAck(seq=first.seq, status="accepted", ts=T0))  # type: ignore[union-attr]
    assert of(run(pump, 30), TopicKind.FP_SALE) == []
    assert pump.unacked() == []


def test_refused_sale_is_not_resent() -> None:
    pump = make_pump(sale_resend_seconds=1.0)
    pump.lift(3, T0, target_ml=1_000)
    run(pump, 10)
    pump.hang(T0)
    pump.sale_acked(
        protocol.SaleAck(seq=1041, status="refused", reason="totalizer_mismatch", ts=T0)
    )
    assert of(run(pump, 5), TopicKind.FP_SALE) == []
    assert pump.held[1041].refused == "totalizer_mismatch"


def test_lock_clear_and_reread_follow_the_buffer_rules() -> None:
    pump = make_pump()
    pump.lift(3, T0, target_ml=5_000)
    run(pump, 20)
    pump.hang(T0)
    pump.lock_sale(1041, "ord_a", T0)
    with pytest.raises(SaleLocked):
        pump.lock_sale(1041, "ord_b", T0)
    pump.clear_sale(1041, "ord_a")
    pump.clear_sale(1041, "ord_a")  # idempotent for the same order
    (again,) = pump.reread(1041, None, T0)
    assert again.message.reread is True  # type: ignore[union-attr]
    assert pump.reread(1042, 1050, T0) == []


def test_authorise_is_refused_while_fuelling_and_when_the_buffer_is_full() -> None:
    pump = make_pump(buffer_capacity=1)
    pump.lift(3, T0, target_ml=2_000)
    run(pump, 3)
    with pytest.raises(Reject) as busy:
        pump.authorise(authorise(), T0)
    assert busy.value.reason == "fp_busy"
    run(pump, 10)
    pump.hang(T0)
    with pytest.raises(Reject) as full:
        pump.authorise(authorise(), T0)
    assert full.value.reason == "buffer_full"


def test_unused_authorisation_expires_at_valid_until() -> None:
    pump = make_pump(auto=False)
    pump.authorise(authorise(valid_until=T0 + timedelta(seconds=5)), T0)
    out = run(pump, 6)  # run() stamps ticks T0 .. T0 + 5.9 s
    assert states(out) == [3]
    assert pump.fp.authorisation is None


def test_stop_while_fuelling_ends_with_a_sale_of_what_flowed() -> None:
    pump = make_pump()
    pump.lift(3, T0, target_ml=50_000, hang_after=1.0)
    run(pump, 6)
    out = pump.stop(T0)
    assert states(out) == [3]
    (sale,) = of(out, TopicKind.FP_SALE)
    assert 0 < sale.volume_ml < 5_000  # type: ignore[union-attr]
    run(pump, 2)
    assert pump.lifted is None  # the driver hung up afterwards


def test_power_loss_keeps_buffer_meters_and_ttc_and_comes_back_idle() -> None:
    pump = make_pump()
    pump.lift(3, T0, target_ml=40_000)
    run(pump, 10)
    assert pump.tx is not None
    dispensed = pump.tx.volume_ml
    pump.power_lost(T0)
    assert pump.state is FPState.IDLE
    assert pump.lifted is None
    assert pump.tx is None
    assert pump.ttc == 1041  # the interrupted transaction was saved: its meters moved
    held = pump.held[1041]
    assert held.report.volume_ml == dispensed
    assert pump.totals[3].volume_ml == 12_345_678 + dispensed


def test_stuck_nozzle_goes_calling_then_error_and_back_to_idle_when_freed() -> None:
    pump = make_pump(stuck_error_after_seconds=30.0)
    out = pump.set_stuck(T0)
    assert states(out) == [4]
    out = run(pump, 31)
    assert states(out) == [11]
    assert of(out, TopicKind.FP_STATE)[0].error_code == "nozzle_stuck"  # type: ignore[union-attr]
    assert pump.hang(T0) == []  # the switch does not register the hang-up
    with pytest.raises(Reject):
        pump.authorise(authorise(), T0)
    assert states(pump.clear_stuck(T0)) == [3]


def test_lifting_a_nozzle_without_a_price_is_refused() -> None:
    pump = make_pump()
    pump.prices.prices.pop("92")
    with pytest.raises(SimError):
        pump.lift(4, T0)
    assert pump.state is FPState.IDLE
