"""Fuelling-point domain: transitions, reports, sales, locks and presets with exact values."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from forecourt.pump.domain import (
    ACTIVE,
    NOZZLE_OUT,
    REPORT_EDGES,
    REPORTABLE,
    AmountMismatch,
    Authorisation,
    AuthorisationEnded,
    Authorised,
    CameOnline,
    ErrorReported,
    FPState,
    FuellingEnded,
    FuellingPoint,
    FuellingProgressed,
    GradeMismatch,
    IllegalTransition,
    InvalidInput,
    InvalidPreset,
    NozzleNotAuthorised,
    Preset,
    PresetExceeded,
    PresetKind,
    PresetReached,
    Progress,
    PumpError,
    SaleAlreadyCleared,
    SaleCleared,
    SaleDuplicate,
    SaleGap,
    SaleGapFilled,
    SaleLockAcquired,
    SaleLocked,
    SaleNotLocked,
    SaleRecorded,
    SalesBehind,
    SaleStatus,
    SaleUnlocked,
    SequenceConflict,
    StateChanged,
    TotalizerMismatch,
    TotalizerRegression,
    Totals,
    UnknownNozzle,
    UnknownSale,
    WentOffline,
    amount_matches,
    amount_tolerance_fen,
    can_report,
    sale_amount_fen,
)
from tests.pump import T0, Meters, make_fp

S = FPState
TTL = timedelta(minutes=2)
LOCK = timedelta(minutes=5)


def fp_in(state: FPState, *, nozzle: int | None = 1) -> FuellingPoint:
    """A fuelling point placed directly in `state` (nozzle 1 out where the state allows one)."""
    fp = make_fp(state=state)
    if state in NOZZLE_OUT or state is S.AUTHORISED:
        fp.nozzle = nozzle
    if state in ACTIVE or state is S.AUTHORISED:
        fp.authorisation = Authorisation()
    if state is S.ERROR:
        fp.error_code = "e1"
    return fp


def fuelling(order_id: str | None = "ord-1", preset: Preset | None = None) -> FuellingPoint:
    """Idle -> Calling -> Authorised -> Started -> Fuelling at 10 L / 79.00 yuan."""
    fp = make_fp(state=S.IDLE)
    fp.nozzle_lifted(1)
    fp.authorise(preset=preset, order_id=order_id, now=T0, ttl=TTL)
    fp.start()
    fp.flow(volume_ml=10_000, amount_fen=7_900, unit_price_fen=790)
    return fp


def refused(fp: FuellingPoint, error: type[PumpError], call: object) -> PumpError:
    """Run `call`, expect `error`, and check that the fuelling point did not change."""
    before = copy.deepcopy(fp)
    assert callable(call)
    with pytest.raises(error) as info:
        call()
    assert fp == before
    return info.value


# -- rounding and presets -------------------------------------------------------------------


def test_sale_amount_rounds_half_up() -> None:
    assert sale_amount_fen(37_975, 790) == 30_000  # 30000.25
    assert sale_amount_fen(1_500, 1) == 2  # 1.5 -> 2
    assert sale_amount_fen(1_499, 1) == 1
    assert sale_amount_fen(0, 790) == 0
    assert sale_amount_fen(50_000, 845) == 42_250


def test_amount_tolerance_grows_with_volume_resolution() -> None:
    assert amount_tolerance_fen(790) == 1
    assert amount_tolerance_fen(790, 10) == 4  # 1 + floor(10 * 790 / 2000)
    assert amount_tolerance_fen(2_000) == 2
    # A 300-yuan preset at 7.90/L, volume shown to 0.01 L: 37.97 L prices at 299.96.
    assert amount_matches(37_970, 790, 30_000, 10)
    assert not amount_matches(37_970, 790, 30_000, 1)
    assert amount_matches(10_000, 790, 7_901)
    assert not amount_matches(10_000, 790, 7_902)


def test_preset_must_be_positive() -> None:
    with pytest.raises(InvalidPreset):
        Preset.amount(0)
    with pytest.raises(InvalidPreset):
        Preset(PresetKind.VOLUME, -5)
    assert Preset.volume(20_000).remaining(volume_ml=15_000, amount_fen=0) == 5_000


# -- administration -------------------------------------------------------------------------


def test_open_close_inoperative_enable() -> None:
    fp = make_fp()
    assert fp.state is S.CLOSED
    assert fp.open() == [StateChanged(S.CLOSED, S.IDLE, "open")]
    assert fp.close() == [StateChanged(S.IDLE, S.CLOSED, "close")]
    assert fp.set_inoperative() == [StateChanged(S.CLOSED, S.INOPERATIVE, "set_inoperative")]
    assert fp.enable() == [StateChanged(S.INOPERATIVE, S.CLOSED, "enable")]


def test_close_while_calling_drops_the_nozzle() -> None:
    fp = fp_in(S.CALLING)
    assert fp.close() == [StateChanged(S.CALLING, S.CLOSED, "close")]
    assert fp.nozzle is None


@pytest.mark.parametrize(
    ("method", "froms"),
    [
        ("open", {S.CLOSED}),
        ("close", {S.IDLE, S.CALLING}),
        ("set_inoperative", {S.CLOSED, S.IDLE, S.CALLING, S.ERROR}),
        ("enable", {S.INOPERATIVE}),
        ("suspend", {S.STARTED, S.FUELLING}),
        ("resume", {S.SUSPENDED_STARTED, S.SUSPENDED_FUELLING}),
        ("start", {S.AUTHORISED}),
        ("stop", {S.AUTHORISED} | ACTIVE),
    ],
)
def test_simple_actions_are_refused_outside_their_states(method: str, froms: set[FPState]) -> None:
    for state in FPState:
        fp = fp_in(state)
        if state in froms:
            getattr(fp, method)()
            assert fp.state is not state
        else:
            err = refused(fp, IllegalTransition, getattr(fp, method))
            assert isinstance(err, IllegalTransition)
            assert (err.from_state, err.action) == (state, method)


# -- the driver and the pump ----------------------------------------------------------------


def test_post_pay_cycle_with_a_local_authorisation() -> None:
    fp = make_fp(state=S.IDLE)
    assert fp.nozzle_lifted(2) == [StateChanged(S.IDLE, S.CALLING, "nozzle_lifted")]
    assert fp.nozzle == 2
    assert fp.apply_state_report(S.AUTHORISED, nozzle=2) == [
        StateChanged(S.CALLING, S.AUTHORISED, "report")
    ]
    assert fp.authorisation == Authorisation()
    assert fp.authorisation.local
    assert fp.start() == [StateChanged(S.AUTHORISED, S.STARTED, "start")]
    assert fp.flow(volume_ml=0, amount_fen=0, unit_price_fen=845) == [FuellingProgressed(0, 0, 845)]
    assert fp.state is S.STARTED
    assert fp.flow(volume_ml=1_000, amount_fen=845, unit_price_fen=845) == [
        StateChanged(S.STARTED, S.FUELLING, "flow"),
        FuellingProgressed(1_000, 845, 845),
    ]
    assert fp.nozzle_hung() == [
        StateChanged(S.FUELLING, S.IDLE, "nozzle_hung"),
        FuellingEnded(2, 1_000, 845, 845, None),
        AuthorisationEnded(None, "completed"),
    ]
    assert fp.nozzle is None
    assert fp.authorisation is None
    assert fp.progress is None


def test_authorise_from_calling_with_a_preset() -> None:
    fp = fp_in(S.CALLING)
    fp.authorisation = None
    preset = Preset.amount(30_000)
    events = fp.authorise(preset=preset, order_id="ord-1", now=T0, ttl=TTL)
    assert events == [
        StateChanged(S.CALLING, S.AUTHORISED, "authorise"),
        Authorised("ord-1", preset, None, T0 + TTL),
    ]
    assert fp.authorisation == Authorisation("ord-1", preset, None, T0, T0 + TTL)
    assert fp.nozzle == 1
    assert fp.remaining() == 30_000


def test_pre_authorised_pump_starts_when_the_nozzle_is_lifted() -> None:
    fp = make_fp(state=S.IDLE)
    fp.authorise(preset=Preset.volume(20_000), order_id="ord-2", now=T0, ttl=TTL, nozzle=2)
    assert fp.nozzle is None
    refused(fp, NozzleNotAuthorised, lambda: fp.nozzle_lifted(1))
    assert fp.nozzle_lifted(2) == [StateChanged(S.AUTHORISED, S.STARTED, "nozzle_lifted")]
    assert fp.nozzle == 2


def test_authorise_for_another_nozzle_than_the_lifted_one_is_refused() -> None:
    fp = fp_in(S.CALLING)
    fp.authorisation = None
    refused(
        fp,
        NozzleNotAuthorised,
        lambda: fp.authorise(preset=None, order_id="o", now=T0, ttl=TTL, nozzle=2),
    )


@pytest.mark.parametrize("state", sorted(set(FPState) - {S.IDLE, S.CALLING}))
def test_authorise_is_refused_unless_idle_or_calling(state: FPState) -> None:
    fp = fp_in(state)
    err = refused(
        fp, IllegalTransition, lambda: fp.authorise(preset=None, order_id="o", now=T0, ttl=TTL)
    )
    assert isinstance(err, IllegalTransition)
    assert err.action == "authorise"


def test_authorise_checks_its_inputs() -> None:
    fp = make_fp(state=S.IDLE)
    refused(fp, InvalidInput, lambda: fp.authorise(preset=None, order_id="o", now=T0, ttl=-TTL))
    naive = datetime(2026, 5, 1)
    refused(fp, InvalidInput, lambda: fp.authorise(preset=None, order_id="o", now=naive, ttl=TTL))
    refused(
        fp,
        UnknownNozzle,
        lambda: fp.authorise(preset=None, order_id="o", now=T0, ttl=TTL, nozzle=9),
    )


def test_nozzle_lifted_checks_the_nozzle_and_state() -> None:
    fp = make_fp(state=S.IDLE)
    err = refused(fp, UnknownNozzle, lambda: fp.nozzle_lifted(7))
    assert isinstance(err, UnknownNozzle)
    assert err.nozzle == 7
    fp.nozzle_lifted(1)
    refused(fp, IllegalTransition, lambda: fp.nozzle_lifted(2))


def test_start_needs_a_lifted_nozzle() -> None:
    fp = make_fp(state=S.IDLE)
    fp.authorise(preset=None, order_id="o", now=T0, ttl=TTL)
    refused(fp, IllegalTransition, fp.start)


def test_flow_ignores_stale_progress_and_refuses_outside_a_transaction() -> None:
    fp = fuelling()
    assert fp.flow(volume_ml=9_000, amount_fen=7_110, unit_price_fen=790) == []
    assert fp.progress == Progress(10_000, 7_900, 790)
    refused(fp, InvalidInput, lambda: fp.flow(volume_ml=-1, amount_fen=0, unit_price_fen=790))
    refused(fp, InvalidInput, lambda: fp.flow(volume_ml=1, amount_fen=0, unit_price_fen=0))
    idle = make_fp(state=S.IDLE)
    refused(idle, IllegalTransition, lambda: idle.flow(volume_ml=1, amount_fen=1, unit_price_fen=1))


def test_suspend_and_resume() -> None:
    fp = fuelling()
    assert fp.suspend() == [StateChanged(S.FUELLING, S.SUSPENDED_FUELLING, "suspend")]
    assert fp.flow(volume_ml=10_010, amount_fen=7_908, unit_price_fen=790) == [
        FuellingProgressed(10_010, 7_908, 790)
    ]
    assert fp.state is S.SUSPENDED_FUELLING
    assert fp.resume() == [StateChanged(S.SUSPENDED_FUELLING, S.FUELLING, "resume")]
    started = fp_in(S.STARTED)
    assert started.suspend() == [StateChanged(S.STARTED, S.SUSPENDED_STARTED, "suspend")]
    assert started.resume() == [StateChanged(S.SUSPENDED_STARTED, S.STARTED, "resume")]


def test_nozzle_hung_in_each_state() -> None:
    started = fp_in(S.STARTED)
    started.authorisation = Authorisation("ord-9")
    assert started.nozzle_hung() == [
        StateChanged(S.STARTED, S.IDLE, "nozzle_hung"),
        AuthorisationEnded("ord-9", "no_flow"),
    ]
    calling = fp_in(S.CALLING)
    assert calling.nozzle_hung() == [StateChanged(S.CALLING, S.IDLE, "nozzle_hung")]
    authorised = fp_in(S.AUTHORISED)
    assert authorised.nozzle_hung() == []
    assert (authorised.state, authorised.nozzle) == (S.AUTHORISED, None)
    refused(authorised, IllegalTransition, authorised.nozzle_hung)
    idle = make_fp(state=S.IDLE)
    refused(idle, IllegalTransition, idle.nozzle_hung)


def test_stop_ends_the_authorisation() -> None:
    fp = fp_in(S.CALLING)
    fp.authorisation = None
    fp.authorise(preset=None, order_id="ord-1", now=T0, ttl=TTL)
    assert fp.stop() == [
        StateChanged(S.AUTHORISED, S.CALLING, "stop"),
        AuthorisationEnded("ord-1", "stopped"),
    ]
    assert fp.nozzle == 1
    fp = fuelling()
    assert fp.stop() == [
        StateChanged(S.FUELLING, S.IDLE, "stop"),
        FuellingEnded(1, 10_000, 7_900, 790, "ord-1"),
        AuthorisationEnded("ord-1", "stopped"),
    ]


def test_expire_drops_an_unused_authorisation_at_its_expiry() -> None:
    fp = make_fp(state=S.IDLE)
    fp.authorise(preset=None, order_id="ord-1", now=T0, ttl=TTL)
    assert fp.expire(T0 + TTL - timedelta(seconds=1)) == []
    assert fp.expire(T0 + TTL) == [
        StateChanged(S.AUTHORISED, S.IDLE, "expire"),
        AuthorisationEnded("ord-1", "expired"),
    ]
    assert fp.authorisation is None
    assert fp.expire(T0 + TTL) == []


def test_expire_leaves_started_and_local_authorisations_alone() -> None:
    fp = fuelling()
    assert fp.expire(T0 + timedelta(hours=1)) == []
    assert fp.state is S.FUELLING
    local = fp_in(S.AUTHORISED)
    assert local.expire(T0 + timedelta(days=1)) == []


def test_error_ends_fuelling_and_reports_once() -> None:
    fp = fuelling()
    assert fp.error("meter_fault") == [
        StateChanged(S.FUELLING, S.ERROR, "error"),
        FuellingEnded(1, 10_000, 7_900, 790, "ord-1"),
        AuthorisationEnded("ord-1", "error"),
        ErrorReported("meter_fault"),
    ]
    assert fp.error("meter_fault") == []
    assert fp.error("pulser_fault") == [ErrorReported("pulser_fault")]
    assert fp.apply_state_report(S.IDLE) == [StateChanged(S.ERROR, S.IDLE, "report")]
    assert fp.error_code is None
    refused(fp, InvalidInput, lambda: fp.error(""))


# -- reports from the pump ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "reported"), list(itertools.product(sorted(REPORTABLE), repeat=2))
)
def test_report_legality_follows_the_table(current: FPState, reported: FPState) -> None:
    fp = fp_in(current)
    code = "e1" if reported is S.ERROR else None
    if can_report(current, reported):
        fp.apply_state_report(reported, nozzle=1, error_code=code)
        assert fp.state is reported
        assert (fp.nozzle is not None) == (reported in NOZZLE_OUT | {S.AUTHORISED})
        assert (fp.authorisation is not None) == (reported in ACTIVE | {S.AUTHORISED})
    else:
        err = refused(
            fp,
            IllegalTransition,
            lambda: fp.apply_state_report(reported, nozzle=1, error_code=code),
        )
        assert isinstance(err, IllegalTransition)
        assert err.action == f"report {reported.name}"


def test_report_table_examples() -> None:
    assert REPORT_EDGES[S.IDLE] >= {S.CALLING, S.AUTHORISED}
    assert not can_report(S.IDLE, S.FUELLING)  # flow without any authorisation
    assert not can_report(S.FUELLING, S.STARTED)
    assert not can_report(S.CLOSED, S.CALLING)
    assert can_report(S.AUTHORISED, S.FUELLING)  # Started coalesced away
    assert can_report(S.FUELLING, S.FUELLING)
    assert not can_report(S.IDLE, S.OFFLINE)


def test_reports_are_checked_before_anything_changes() -> None:
    fp = make_fp(state=S.IDLE)
    refused(fp, UnknownNozzle, lambda: fp.apply_state_report(S.CALLING, nozzle=5))
    refused(fp, IllegalTransition, lambda: fp.apply_state_report(S.CALLING))
    refused(fp, IllegalTransition, lambda: fp.apply_state_report(S.OFFLINE))
    refused(fp, InvalidInput, lambda: fp.apply_state_report(S.ERROR))
    refused(fp, InvalidInput, lambda: fp.apply_state_report(S.IDLE, last_seq=-1))
    assert fp.apply_state_report(S.IDLE) == []


def test_started_report_for_a_nozzle_that_is_not_authorised_is_refused() -> None:
    fp = make_fp(state=S.IDLE)
    fp.authorise(preset=None, order_id="o", now=T0, ttl=TTL, nozzle=2)
    refused(fp, NozzleNotAuthorised, lambda: fp.apply_state_report(S.STARTED, nozzle=1))
    fp.apply_state_report(S.STARTED, nozzle=2)
    assert (fp.state, fp.nozzle) == (S.STARTED, 2)


def test_report_ends_fuelling_like_a_hung_nozzle() -> None:
    fp = fuelling()
    assert fp.apply_state_report(S.IDLE, last_seq=0) == [
        StateChanged(S.FUELLING, S.IDLE, "report"),
        FuellingEnded(1, 10_000, 7_900, 790, "ord-1"),
        AuthorisationEnded("ord-1", "completed"),
    ]


def test_report_with_a_newer_ttc_asks_for_a_re_read() -> None:
    fp = make_fp(state=S.IDLE)
    assert fp.apply_state_report(S.IDLE, last_seq=3) == [SalesBehind(1, 3)]
    fresh = make_fp(state=S.IDLE)
    fresh.buffer.last_seq = None
    assert fresh.apply_state_report(S.IDLE, last_seq=3) == []


# -- the link -------------------------------------------------------------------------------


def test_offline_keeps_everything_and_returns_to_the_reported_state() -> None:
    fp = fuelling()
    fp.record_sale(Meters().sale())
    assert fp.go_offline() == [
        StateChanged(S.FUELLING, S.OFFLINE, "go_offline"),
        WentOffline(S.FUELLING),
    ]
    assert fp.go_offline() == []
    assert (fp.authorisation is not None, len(fp.sales)) == (True, 1)
    refused(fp, IllegalTransition, lambda: fp.authorise(preset=None, order_id="o", now=T0, ttl=TTL))
    refused(fp, IllegalTransition, fp.stop)
    refused(fp, IllegalTransition, lambda: fp.lock_sale(1, "ord-2", T0, LOCK))
    assert fp.come_online(S.FUELLING, nozzle=1, last_seq=1) == [
        StateChanged(S.OFFLINE, S.FUELLING, "come_online"),
        CameOnline(S.FUELLING, S.FUELLING),
    ]
    assert fp.progress == Progress(10_000, 7_900, 790)
    refused(fp, IllegalTransition, lambda: fp.come_online(S.IDLE))


def test_back_online_after_the_transaction_ended_meanwhile() -> None:
    fp = fuelling()
    fp.go_offline()
    assert fp.apply_state_report(S.IDLE, last_seq=2) == [
        StateChanged(S.OFFLINE, S.IDLE, "come_online"),
        CameOnline(S.FUELLING, S.IDLE),
        FuellingEnded(1, 10_000, 7_900, 790, "ord-1"),
        AuthorisationEnded("ord-1", "link_lost"),
        SalesBehind(1, 2),
    ]
    assert (fp.state, fp.authorisation, fp.state_before_offline) == (S.IDLE, None, None)


def test_back_online_into_a_state_that_skips_steps() -> None:
    fp = make_fp(state=S.IDLE)
    fp.go_offline()
    fp.come_online(S.FUELLING, nozzle=2)
    assert (fp.state, fp.nozzle, fp.authorisation) == (S.FUELLING, 2, Authorisation())


def test_clear_and_unlock_work_while_offline() -> None:
    fp = make_fp(state=S.IDLE)
    fp.record_sale(Meters().sale())
    fp.lock_sale(1, "ord-1", T0, LOCK)
    fp.go_offline()
    assert fp.clear_sale(1, "ord-1") == [SaleCleared(1, "ord-1")]


# -- presets --------------------------------------------------------------------------------


def test_amount_preset_stops_at_the_preset_and_alerts_once_on_overrun() -> None:
    fp = fuelling(preset=Preset.amount(30_000))
    assert (fp.remaining(), fp.should_stop()) == (22_100, False)
    events = fp.flow(volume_ml=37_975, amount_fen=30_000, unit_price_fen=790)
    assert events == [FuellingProgressed(37_975, 30_000, 790), PresetReached(Preset.amount(30_000))]
    assert (fp.remaining(), fp.should_stop()) == (0, True)
    assert fp.flow(volume_ml=37_977, amount_fen=30_001, unit_price_fen=790) == [
        FuellingProgressed(37_977, 30_001, 790)
    ]
    assert fp.flow(volume_ml=37_990, amount_fen=30_012, unit_price_fen=790) == [
        FuellingProgressed(37_990, 30_012, 790),
        PresetExceeded(Preset.amount(30_000), 12),
    ]
    assert fp.flow(volume_ml=38_000, amount_fen=30_020, unit_price_fen=790) == [
        FuellingProgressed(38_000, 30_020, 790)
    ]


def test_volume_preset() -> None:
    fp = fuelling(preset=Preset.volume(20_000))
    assert fp.remaining() == 10_000
    assert fp.flow(volume_ml=20_000, amount_fen=15_800, unit_price_fen=790)[-1] == PresetReached(
        Preset.volume(20_000)
    )


def test_no_preset_never_asks_to_stop() -> None:
    fp = fuelling()
    assert (fp.remaining(), fp.should_stop()) == (None, False)


# -- sales ----------------------------------------------------------------------------------


def test_first_sale_is_payable_and_moves_the_meters() -> None:
    fp, meters = make_fp(state=S.IDLE), Meters()
    sale = meters.sale(nozzle=1, volume_ml=10_000, unit_price_fen=790)
    assert fp.record_sale(sale) == [SaleRecorded(sale)]
    assert sale.status is SaleStatus.PAYABLE
    assert fp.last_seq == 1
    assert fp.totalizers[1] == Totals(1, 1_010_000, 797_900)
    assert fp.totalizers[2] == Totals(0, 2_000_000, 1_690_000)
    assert fp.payable_sales(T0) == [sale]


def test_exact_duplicate_is_ignored_and_a_different_one_conflicts() -> None:
    fp, meters = make_fp(), Meters()
    sale = meters.sale()
    fp.record_sale(sale)
    assert fp.record_sale(sale) == [SaleDuplicate(1, verified=True)]
    assert len(fp.sales) == 1
    other = replace(sale, ended_at=sale.ended_at + timedelta(seconds=1))
    err = refused(fp, SequenceConflict, lambda: fp.record_sale(other))
    assert isinstance(err, SequenceConflict)
    assert err.seq == 1


def test_gap_is_reported_then_filled_by_a_re_read() -> None:
    fp, meters = make_fp(), Meters()
    s1, s2, s3, s4 = (meters.sale(nozzle=n) for n in (1, 2, 1, 1))
    fp.record_sale(s1)
    assert fp.record_sale(s4) == [SaleRecorded(s4), SaleGap((2, 3))]
    assert (fp.last_seq, fp.buffer.missing) == (4, {2, 3})
    assert fp.record_sale(s3) == [SaleRecorded(s3), SaleGapFilled(3)]
    assert fp.record_sale(s2) == [SaleRecorded(s2), SaleGapFilled(2)]
    assert [s.seq for s in fp.sales] == [1, 2, 3, 4]
    assert fp.buffer.missing == set()
    assert fp.totalizers[1] == Totals(4, 1_030_000, 813_700)
    assert fp.totalizers[2] == Totals(2, 2_010_000, 1_697_900)


def test_gap_fill_must_fit_between_its_neighbours() -> None:
    fp, meters = make_fp(), Meters()
    s1, s2, s3 = meters.sale(), meters.sale(), meters.sale()
    fp.record_sale(s1)
    fp.record_sale(s3)
    bigger = replace(
        s2,
        volume_ml=11_000,
        amount_fen=8_690,
        totalizer_volume_ml=s2.totalizer_volume_ml + 1_000,
        totalizer_amount_fen=s2.totalizer_amount_fen + 790,
    )
    refused(fp, TotalizerMismatch, lambda: fp.record_sale(bigger))
    assert fp.record_sale(s2)[-1] == SaleGapFilled(2)


def test_too_large_a_jump_is_a_conflict_not_a_gap() -> None:
    fp = make_fp()
    sale = Meters().sale(seq=1_002)
    refused(fp, SequenceConflict, lambda: fp.record_sale(sale))
    assert fp.record_sale(Meters().sale(seq=1_001))[-1] == SaleGap(tuple(range(1, 1_001)))


def test_old_seq_before_our_history_is_an_unverified_duplicate() -> None:
    fp = make_fp()
    fp.buffer.last_seq = 50
    fp.buffer.totalizers.clear()
    assert fp.record_sale(Meters().sale(seq=7)) == [SaleDuplicate(7, verified=False)]


def test_totalizers_must_not_go_backwards() -> None:
    fp, meters = make_fp(), Meters()
    fp.record_sale(meters.sale())
    bad = replace(meters.sale(), totalizer_volume_ml=1_005_000, totalizer_amount_fen=795_000)
    refused(fp, TotalizerRegression, lambda: fp.record_sale(bad))


def test_sale_must_match_the_meter_delta() -> None:
    fp, meters = make_fp(), Meters()
    sale = meters.sale(volume_ml=10_000)
    off_by_two = replace(sale, totalizer_volume_ml=sale.totalizer_volume_ml + 2)
    refused(fp, TotalizerMismatch, lambda: fp.record_sale(off_by_two))
    off_by_one = replace(sale, totalizer_volume_ml=sale.totalizer_volume_ml + 1)
    assert fp.record_sale(off_by_one) == [SaleRecorded(off_by_one)]
    amount_off = replace(
        Meters(seq=1, totals={1: (1_010_001, 797_900)}).sale(),
        totalizer_amount_fen=797_900 + 7_900 + 2,
    )
    refused(fp, TotalizerMismatch, lambda: fp.record_sale(amount_off))


def test_amount_must_match_volume_and_price() -> None:
    fp = make_fp()
    sale = Meters().sale(volume_ml=10_000, unit_price_fen=790)
    wrong = replace(sale, amount_fen=7_910, totalizer_amount_fen=sale.totalizer_amount_fen + 10)
    refused(fp, AmountMismatch, lambda: fp.record_sale(wrong))


def test_sale_nozzle_grade_and_fields_are_checked() -> None:
    fp = make_fp()
    sale = Meters().sale()
    refused(fp, UnknownNozzle, lambda: fp.record_sale(replace(sale, nozzle=3)))
    refused(fp, GradeMismatch, lambda: fp.record_sale(replace(sale, grade="95")))
    refused(fp, InvalidInput, lambda: fp.record_sale(replace(sale, seq=0)))
    refused(fp, InvalidInput, lambda: fp.record_sale(replace(sale, ended_at=datetime(2026, 5, 1))))
    refused(fp, TotalizerMismatch, lambda: fp.record_sale(replace(sale, totalizer_volume_ml=5)))


def test_sale_under_an_order_authorisation_belongs_to_that_order() -> None:
    fp = make_fp()
    sale = Meters().sale(auth_ref="ord-7")
    [event] = fp.record_sale(sale)
    assert isinstance(event, SaleRecorded)
    assert (event.sale.status, event.sale.locked_by, event.sale.lock_expires_at) == (
        SaleStatus.LOCKED,
        "ord-7",
        None,
    )
    assert fp.payable_sales(T0 + timedelta(days=30)) == []
    refused(fp, SaleLocked, lambda: fp.lock_sale(1, "ord-8", T0, LOCK))
    assert fp.clear_sale(1, "ord-7") == [SaleCleared(1, "ord-7")]


# -- locks ----------------------------------------------------------------------------------


def with_sale() -> FuellingPoint:
    """A fuelling point with one payable sale (seq 1)."""
    fp = make_fp(state=S.IDLE)
    fp.record_sale(Meters().sale())
    return fp


def test_lock_unlock_and_relock() -> None:
    fp = with_sale()
    assert fp.lock_sale(1, "A", T0, LOCK) == [SaleLockAcquired(1, "A", T0 + LOCK, None)]
    sale = fp.buffer.get(1)
    assert (sale.status, sale.locked_by, sale.lock_expires_at) == (
        SaleStatus.LOCKED,
        "A",
        T0 + LOCK,
    )
    assert fp.payable_sales(T0) == []
    err = refused(fp, SaleLocked, lambda: fp.unlock_sale(1, "B"))
    assert isinstance(err, SaleLocked)
    assert err.locked_by == "A"
    assert fp.unlock_sale(1, "A") == [SaleUnlocked(1, "A")]
    assert fp.unlock_sale(1, "A") == []
    assert fp.buffer.get(1).status is SaleStatus.PAYABLE
    assert fp.lock_sale(1, "B", T0, LOCK)[0].order_id == "B"  # type: ignore[union-attr]


def test_lock_held_by_another_order_is_refused_until_it_expires() -> None:
    fp = with_sale()
    fp.lock_sale(1, "A", T0, LOCK)
    refused(fp, SaleLocked, lambda: fp.lock_sale(1, "B", T0 + LOCK - timedelta(seconds=1), LOCK))
    later = T0 + LOCK
    assert [s.seq for s in fp.payable_sales(later)] == [1]
    assert fp.lock_sale(1, "B", later, LOCK) == [SaleLockAcquired(1, "B", later + LOCK, "A")]
    refused(fp, SaleLocked, lambda: fp.clear_sale(1, "A"))


def test_own_lock_is_refreshed() -> None:
    fp = with_sale()
    fp.lock_sale(1, "A", T0, LOCK)
    one_minute = T0 + timedelta(minutes=1)
    assert fp.lock_sale(1, "A", one_minute, LOCK) == [
        SaleLockAcquired(1, "A", one_minute + LOCK, None)
    ]


def test_clear_needs_the_lock_and_is_idempotent() -> None:
    fp = with_sale()
    refused(fp, SaleNotLocked, lambda: fp.clear_sale(1, "A"))
    fp.lock_sale(1, "A", T0, LOCK)
    refused(fp, SaleLocked, lambda: fp.clear_sale(1, "B"))
    assert fp.clear_sale(1, "A") == [SaleCleared(1, "A")]
    assert fp.clear_sale(1, "A") == []
    sale = fp.buffer.get(1)
    assert (sale.status, sale.locked_by, sale.lock_expires_at) == (SaleStatus.CLEARED, "A", None)
    refused(fp, SaleAlreadyCleared, lambda: fp.clear_sale(1, "B"))
    refused(fp, SaleAlreadyCleared, lambda: fp.lock_sale(1, "B", T0, LOCK))
    refused(fp, SaleAlreadyCleared, lambda: fp.unlock_sale(1, "A"))
    assert fp.payable_sales(T0 + timedelta(days=1)) == []


def test_clear_after_an_expired_lock_that_nobody_took_over() -> None:
    fp = with_sale()
    fp.lock_sale(1, "A", T0, LOCK)
    assert fp.clear_sale(1, "A") == [SaleCleared(1, "A")]


def test_lock_checks_its_inputs() -> None:
    fp = with_sale()
    refused(fp, UnknownSale, lambda: fp.lock_sale(2, "A", T0, LOCK))
    refused(fp, UnknownSale, lambda: fp.clear_sale(2, "A"))
    refused(fp, InvalidInput, lambda: fp.lock_sale(1, "A", T0, timedelta(0)))
    refused(fp, InvalidInput, lambda: fp.lock_sale(1, "A", datetime(2026, 5, 1), LOCK))


def test_fuelling_point_configuration_is_checked() -> None:
    with pytest.raises(InvalidInput):
        make_fp(number=0)
    with pytest.raises(InvalidInput):
        make_fp(nozzles={})
    with pytest.raises(InvalidInput):
        make_fp(volume_resolution_ml=0)
