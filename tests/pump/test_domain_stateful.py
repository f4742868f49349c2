"""Random legal and illegal actions on a fuelling point never break its invariants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from forecourt.pump.domain import (
    ACTIVE,
    NOZZLE_OUT,
    REPORT_EDGES,
    REPORTABLE,
    AmountMismatch,
    Event,
    FPState,
    Preset,
    PumpError,
    Sale,
    SaleAlreadyCleared,
    SaleGapFilled,
    SaleLocked,
    SaleNotLocked,
    SaleRecorded,
    SaleStatus,
    SequenceConflict,
    TotalizerMismatch,
    TotalizerRegression,
    UnknownSale,
)
from tests.pump import START_TOTALS, T0, Meters, make_fp

S = FPState
ORDERS = ("A", "B", "C")
RESTING = frozenset({S.INOPERATIVE, S.CLOSED, S.IDLE, S.ERROR})

# What each action may do to the state (old, new); written from the spec, not the code.
TARGETS: dict[str, set[tuple[FPState, FPState]]] = {
    "open": {(S.CLOSED, S.IDLE)},
    "close": {(S.IDLE, S.CLOSED), (S.CALLING, S.CLOSED)},
    "set_inoperative": {(s, S.INOPERATIVE) for s in (S.CLOSED, S.IDLE, S.CALLING, S.ERROR)},
    "enable": {(S.INOPERATIVE, S.CLOSED)},
    "suspend": {(S.STARTED, S.SUSPENDED_STARTED), (S.FUELLING, S.SUSPENDED_FUELLING)},
    "resume": {(S.SUSPENDED_STARTED, S.STARTED), (S.SUSPENDED_FUELLING, S.FUELLING)},
    "start": {(S.AUTHORISED, S.STARTED)},
    "stop": {(S.AUTHORISED, S.IDLE), (S.AUTHORISED, S.CALLING)} | {(a, S.IDLE) for a in ACTIVE},
    "nozzle_hung": {(S.CALLING, S.IDLE), (S.AUTHORISED, S.AUTHORISED)}
    | {(a, S.IDLE) for a in ACTIVE},
    "nozzle_lifted": {(S.IDLE, S.CALLING), (S.AUTHORISED, S.STARTED)},
    "authorise": {(S.IDLE, S.AUTHORISED), (S.CALLING, S.AUTHORISED)},
    "flow": {(S.STARTED, S.FUELLING)} | {(a, a) for a in ACTIVE},
    "expire": {(s, s) for s in FPState} | {(S.AUTHORISED, S.IDLE), (S.AUTHORISED, S.CALLING)},
    "error": {(s, S.ERROR) for s in FPState if s is not S.OFFLINE},
    "go_offline": {(s, S.OFFLINE) for s in FPState},
    "come_online": {(S.OFFLINE, s) for s in REPORTABLE},
    "report": {(s, t) for s, ts in REPORT_EDGES.items() for t in ts}
    | {(s, s) for s in REPORTABLE}
    | {(S.OFFLINE, s) for s in REPORTABLE},
}
# Actions that must succeed from these states (they take no arguments that could be wrong).
MUST_SUCCEED: dict[str, set[FPState]] = {
    "open": {S.CLOSED},
    "close": {S.IDLE, S.CALLING},
    "set_inoperative": {S.CLOSED, S.IDLE, S.CALLING, S.ERROR},
    "enable": {S.INOPERATIVE},
    "suspend": {S.STARTED, S.FUELLING},
    "resume": {S.SUSPENDED_STARTED, S.SUSPENDED_FUELLING},
    "go_offline": set(FPState),
}

SIMPLE = (
    "open",
    "close",
    "set_inoperative",
    "enable",
    "suspend",
    "resume",
    "start",
    "stop",
    "nozzle_hung",
    "go_offline",
)
Lock = tuple[SaleStatus, str | None, datetime | None]


class FuellingPointMachine(RuleBasedStateMachine):
    """Drives one fuelling point and an honest pump that sometimes loses messages."""

    def __init__(self) -> None:
        super().__init__()
        self.fp = make_fp(state=S.IDLE)
        self.meters = Meters()
        self.produced: dict[int, Sale] = {}
        self.now = T0
        self.model: dict[int, Lock] = {}
        self.cleared: set[int] = set()
        self.seen_last_seq = 0
        self.seen_totals = {n: (v, a) for n, (v, a) in START_TOTALS.items()}

    # -- helpers ---------------------------------------------------------------------------

    def attempt(self, name: str, call: Callable[[], list[Event]]) -> list[Event] | None:
        """Run an action; a refusal must leave the fuelling point exactly as it was."""
        before = copy.deepcopy(self.fp)
        old = self.fp.state
        try:
            events = call()
        except PumpError:
            assert self.fp == before, f"{name} raised but changed the fuelling point"
            assert old not in MUST_SUCCEED.get(name, set()), f"{name} refused in {old.name}"
            return None
        assert (old, self.fp.state) in TARGETS[name], f"{name}: {old.name} -> {self.fp.state.name}"
        self.note_sales(events)
        return events

    def refused(self, error: type[PumpError], call: Callable[[], list[Event]]) -> None:
        """The call must raise `error` and change nothing."""
        before = copy.deepcopy(self.fp)
        try:
            call()
        except error:
            assert self.fp == before
        else:
            raise AssertionError(f"expected {error.__name__}")

    def note_sales(self, events: list[Event]) -> None:
        """Follow accepted sales in the lock model."""
        filled = {e.seq for e in events if isinstance(e, SaleGapFilled)}
        for e in events:
            if isinstance(e, SaleRecorded):
                seq = e.sale.seq
                if seq not in filled:
                    assert seq > self.seen_last_seq, "accepted seqs must strictly increase"
                owner = e.sale.auth_ref
                status = SaleStatus.LOCKED if owner else SaleStatus.PAYABLE
                self.model[seq] = (status, owner, None)

    # -- state actions ---------------------------------------------------------------------

    @rule(name=st.sampled_from(SIMPLE))
    def simple(self, name: str) -> None:
        self.attempt(name, getattr(self.fp, name))

    @rule(nozzle=st.integers(1, 3))
    def lift(self, nozzle: int) -> None:
        self.attempt("nozzle_lifted", lambda: self.fp.nozzle_lifted(nozzle))

    @rule(
        preset=st.none()
        | st.builds(Preset.amount, st.integers(1, 40_000))
        | st.builds(Preset.volume, st.integers(1, 60_000)),
        order=st.sampled_from([None, *ORDERS]),
        ttl=st.integers(-5, 300),
        nozzle=st.none() | st.integers(1, 3),
    )
    def authorise(
        self, preset: Preset | None, order: str | None, ttl: int, nozzle: int | None
    ) -> None:
        self.attempt(
            "authorise",
            lambda: self.fp.authorise(
                preset=preset,
                order_id=order,
                now=self.now,
                ttl=timedelta(seconds=ttl),
                nozzle=nozzle,
            ),
        )

    @rule(delta=st.integers(0, 5_000), price=st.sampled_from([790, 845]), back=st.booleans())
    def flow(self, delta: int, price: int, back: bool) -> None:
        p = self.fp.progress
        base = p.volume_ml if p else 0
        price = p.unit_price_fen if p else price
        volume = max(0, base - delta) if back else base + delta
        self.attempt(
            "flow",
            lambda: self.fp.flow(
                volume_ml=volume,
                amount_fen=(volume * price + 500) // 1000,
                unit_price_fen=price,
            ),
        )

    @rule(seconds=st.integers(0, 400))
    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def expire(self) -> None:
        self.attempt("expire", lambda: self.fp.expire(self.now))
        auth = self.fp.authorisation
        if self.fp.state is S.AUTHORISED and auth is not None and auth.expires_at is not None:
            assert self.now < auth.expires_at

    @rule(code=st.sampled_from(["", "e1", "e2"]))
    def error(self, code: str) -> None:
        self.attempt("error", lambda: self.fp.error(code))

    @rule(
        state=st.sampled_from(sorted(FPState)),
        nozzle=st.none() | st.integers(1, 3),
        code=st.none() | st.just("e3"),
        last_seq=st.none() | st.integers(0, 20),
    )
    def report(
        self, state: FPState, nozzle: int | None, code: str | None, last_seq: int | None
    ) -> None:
        self.attempt(
            "report",
            lambda: self.fp.apply_state_report(
                state, nozzle=nozzle, error_code=code, last_seq=last_seq
            ),
        )

    @precondition(lambda self: self.fp.state is S.OFFLINE)
    @rule(state=st.sampled_from(sorted(REPORTABLE)), nozzle=st.none() | st.integers(1, 2))
    def come_online(self, state: FPState, nozzle: int | None) -> None:
        self.attempt("come_online", lambda: self.fp.come_online(state, nozzle=nozzle))

    # -- a normal transaction, so that the legal path is walked often ----------------------

    @precondition(lambda self: self.fp.state is S.IDLE)
    @rule(nozzle=st.integers(1, 2))
    def driver_lifts(self, nozzle: int) -> None:
        assert self.attempt("nozzle_lifted", lambda: self.fp.nozzle_lifted(nozzle)) is not None

    @precondition(lambda self: self.fp.state in (S.IDLE, S.CALLING))
    @rule(
        preset=st.none() | st.builds(Preset.amount, st.integers(1_000, 40_000)),
        order=st.sampled_from([None, *ORDERS]),
        ttl=st.integers(30, 300),
    )
    def server_authorises(self, preset: Preset | None, order: str | None, ttl: int) -> None:
        call = lambda: self.fp.authorise(  # noqa: E731
            preset=preset, order_id=order, now=self.now, ttl=timedelta(seconds=ttl)
        )
        assert self.attempt("authorise", call) is not None

    @precondition(lambda self: self.fp.state is S.AUTHORISED)
    @rule(nozzle=st.integers(1, 2))
    def pump_starts(self, nozzle: int) -> None:
        if self.fp.nozzle is not None:
            assert self.attempt("start", self.fp.start) is not None
        else:
            self.attempt("nozzle_lifted", lambda: self.fp.nozzle_lifted(nozzle))

    @precondition(lambda self: self.fp.state in ACTIVE)
    @rule(delta=st.integers(1, 30_000))
    def pump_flows(self, delta: int) -> None:
        p = self.fp.progress
        volume = (p.volume_ml if p else 0) + delta
        price = self.fp.nozzle * 55 + 735 if self.fp.nozzle else 790
        call = lambda: self.fp.flow(  # noqa: E731
            volume_ml=volume, amount_fen=(volume * price + 500) // 1000, unit_price_fen=price
        )
        assert self.attempt("flow", call) is not None

    @precondition(lambda self: self.fp.state in ACTIVE)
    @rule(deliver=st.booleans())
    def driver_hangs_up(self, deliver: bool) -> None:
        nozzle, p, auth = self.fp.nozzle, self.fp.progress, self.fp.authorisation
        assert nozzle is not None
        assert auth is not None
        assert self.attempt("nozzle_hung", self.fp.nozzle_hung) is not None
        if p is not None and p.volume_ml > 0:
            sale = self.meters.sale(nozzle, p.volume_ml, p.unit_price_fen, auth_ref=auth.order_id)
            self.produced[sale.seq] = sale
            if deliver:
                self.deliver(sale)

    @precondition(lambda self: self.fp.state is S.IDLE)
    @rule(
        nozzle=st.integers(1, 2),
        preset=st.none() | st.builds(Preset.amount, st.integers(1_000, 40_000)),
        order=st.sampled_from([None, *ORDERS]),
        steps=st.lists(st.integers(1, 15_000), min_size=1, max_size=4),
        pause=st.booleans(),
        deliver=st.booleans(),
    )
    def whole_transaction(
        self,
        nozzle: int,
        preset: Preset | None,
        order: str | None,
        steps: list[int],
        pause: bool,
        deliver: bool,
    ) -> None:
        """Lift, authorise, start, flow (maybe pause), hang up: one complete sale."""
        self.driver_lifts(nozzle)
        self.server_authorises(preset, order, 120)
        self.pump_starts(nozzle)
        for i, step in enumerate(steps):
            self.pump_flows(step)
            if pause and i == 0:
                assert self.attempt("suspend", self.fp.suspend) is not None
                assert self.attempt("resume", self.fp.resume) is not None
        self.driver_hangs_up(deliver)

    # -- sales from an honest pump ---------------------------------------------------------

    @rule(
        nozzle=st.integers(1, 2),
        volume=st.integers(0, 60_000),
        price=st.sampled_from([790, 845, 765]),
        owner=st.sampled_from([None, None, *ORDERS]),
        deliver=st.booleans(),
    )
    def pump_sale(
        self, nozzle: int, volume: int, price: int, owner: str | None, deliver: bool
    ) -> None:
        sale = self.meters.sale(nozzle, volume, price, auth_ref=owner)
        self.produced[sale.seq] = sale
        if deliver:
            self.deliver(sale)

    @precondition(lambda self: bool(self.produced))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(self.produced)))
        self.deliver(self.produced[seq])

    def deliver(self, sale: Sale) -> None:
        before = copy.deepcopy(self.fp)
        events = self.fp.record_sale(sale)  # an honest sale is never refused
        self.note_sales(events)
        if not any(isinstance(e, SaleRecorded) for e in events):
            assert self.fp == before

    # -- dishonest sales -------------------------------------------------------------------

    @precondition(lambda self: any(s.seq in self.model for s in self.produced.values()))
    @rule(data=st.data())
    def conflicting_sale(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(s for s in self.produced if s in self.model)))
        other = replace(self.produced[seq], ended_at=self.produced[seq].ended_at + timedelta(1))
        self.refused(SequenceConflict, lambda: self.fp.record_sale(other))

    @rule(nozzle=st.integers(1, 2), kind=st.sampled_from(["regression", "amount", "mismatch"]))
    def bad_sale(self, nozzle: int, kind: str) -> None:
        last = self.fp.last_seq or 0
        if last + 1 in self.produced or (kind == "mismatch" and self.fp.buffer.missing):
            return  # the honest sale owns that seq / a gap hides the meter delta
        base = self.fp.totalizers[nozzle]
        volume = 10_000
        amount = 7_900
        totals = (base.volume_ml + volume, base.amount_fen + amount)
        error: type[PumpError] = TotalizerMismatch
        if kind == "regression":
            totals = (base.volume_ml - 1, base.amount_fen + amount)
            error = TotalizerRegression
        elif kind == "amount":
            amount, totals = amount + 50, (totals[0], totals[1] + 50)
            error = AmountMismatch
        else:
            totals = (totals[0] + 500, totals[1])
        bad = Sale(
            seq=last + 1,
            nozzle=nozzle,
            grade=self.fp.nozzles[nozzle].grade,
            volume_ml=volume,
            amount_fen=amount,
            unit_price_fen=790,
            totalizer_volume_ml=totals[0],
            totalizer_amount_fen=totals[1],
            ended_at=self.now,
        )
        self.refused(error, lambda: self.fp.record_sale(bad))

    # -- locks against a model -------------------------------------------------------------

    def seqs(self) -> st.SearchStrategy[int]:
        known = sorted(self.produced)
        return st.sampled_from([*known, known[-1] + 1])

    @precondition(lambda self: bool(self.produced))
    @rule(data=st.data(), order=st.sampled_from(ORDERS), ttl=st.integers(1, 600))
    def lock(self, data: st.DataObject, order: str, ttl: int) -> None:
        seq = data.draw(self.seqs())

        def call() -> list[Event]:
            return self.fp.lock_sale(seq, order, self.now, timedelta(seconds=ttl))

        if self.fp.state is S.OFFLINE:
            return None if seq not in self.model else self.refused(PumpError, call)
        if seq not in self.model:
            return self.refused(UnknownSale, call)
        status, owner, expires = self.model[seq]
        held = status is SaleStatus.LOCKED and (expires is None or self.now < expires)
        if status is SaleStatus.CLEARED:
            return self.refused(SaleAlreadyCleared, call)
        if held and owner != order:
            return self.refused(SaleLocked, call)
        new = self.now + timedelta(seconds=ttl)
        if status is SaleStatus.LOCKED and owner == order:
            new_expiry = None if expires is None else max(new, expires)
        else:
            new_expiry = new
        call()
        self.model[seq] = (SaleStatus.LOCKED, order, new_expiry)
        return None

    @precondition(lambda self: bool(self.produced))
    @rule(data=st.data(), order=st.sampled_from(ORDERS))
    def unlock(self, data: st.DataObject, order: str) -> None:
        seq = data.draw(self.seqs())

        def call() -> list[Event]:
            return self.fp.unlock_sale(seq, order)

        if seq not in self.model:
            return self.refused(UnknownSale, call)
        status, owner, _ = self.model[seq]
        if status is SaleStatus.CLEARED:
            return self.refused(SaleAlreadyCleared, call)
        if status is SaleStatus.LOCKED and owner != order:
            return self.refused(SaleLocked, call)
        call()
        self.model[seq] = (SaleStatus.PAYABLE, None, None)
        return None

    @precondition(lambda self: bool(self.produced))
    @rule(data=st.data(), order=st.sampled_from(ORDERS))
    def clear(self, data: st.DataObject, order: str) -> None:
        seq = data.draw(self.seqs())

        def call() -> list[Event]:
            return self.fp.clear_sale(seq, order)

        if seq not in self.model:
            return self.refused(UnknownSale, call)
        status, owner, _ = self.model[seq]
        if status is SaleStatus.CLEARED:
            if owner == order:
                assert call() == []
                return None
            return self.refused(SaleAlreadyCleared, call)
        if status is SaleStatus.PAYABLE:
            return self.refused(SaleNotLocked, call)
        if owner != order:
            return self.refused(SaleLocked, call)
        call()
        self.model[seq] = (SaleStatus.CLEARED, order, None)
        self.cleared.add(seq)
        return None

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def state_is_consistent(self) -> None:
        fp = self.fp
        assert isinstance(fp.state, FPState)
        if fp.state in NOZZLE_OUT:
            assert fp.nozzle in fp.nozzles
        if fp.state in ACTIVE or fp.state is S.AUTHORISED:
            assert fp.authorisation is not None
        if fp.state in RESTING:
            assert (fp.nozzle, fp.authorisation, fp.progress) == (None, None, None)
        assert (fp.state is S.OFFLINE) == (fp.state_before_offline is not None)
        underlying = fp.state_before_offline if fp.state is S.OFFLINE else fp.state
        assert (underlying is S.ERROR) == (fp.error_code is not None)

    @invariant()
    def buffer_matches_the_lock_model(self) -> None:
        sales = self.fp.sales
        assert {s.seq: (s.status, s.locked_by, s.lock_expires_at) for s in sales} == self.model
        for s in sales:
            assert s.facts() == self.produced[s.seq].facts()
            if s.status is SaleStatus.PAYABLE:
                assert (s.locked_by, s.lock_expires_at) == (None, None)
            else:
                assert s.locked_by is not None  # exactly one order
        assert all(self.model[seq][0] is SaleStatus.CLEARED for seq in self.cleared)
        payable = self.fp.payable_sales(self.now)
        assert all(s.status is not SaleStatus.CLEARED for s in payable)

    @invariant()
    def sequence_only_moves_forward(self) -> None:
        seqs = [s.seq for s in self.fp.sales]
        assert seqs == sorted(set(seqs))
        last = self.fp.last_seq or 0
        assert last >= self.seen_last_seq
        assert not seqs or last == seqs[-1]
        assert all(m < last and m not in seqs for m in self.fp.buffer.missing)
        self.seen_last_seq = last

    @invariant()
    def totalizers_never_decrease_and_add_up(self) -> None:
        for nozzle, (start_v, start_a) in START_TOTALS.items():
            totals = self.fp.totalizers[nozzle]
            seen_v, seen_a = self.seen_totals[nozzle]
            assert totals.volume_ml >= seen_v
            assert totals.amount_fen >= seen_a
            self.seen_totals[nozzle] = (totals.volume_ml, totals.amount_fen)
            made = [s for s in self.produced.values() if s.nozzle == nozzle and s.seq <= totals.seq]
            assert totals.volume_ml - start_v == sum(s.volume_ml for s in made)
            assert totals.amount_fen - start_a == sum(s.amount_fen for s in made)
            if not self.fp.buffer.missing:
                accepted = [s for s in self.fp.sales if s.nozzle == nozzle]
                assert totals.volume_ml - start_v == sum(s.volume_ml for s in accepted)


FuellingPointMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFuellingPoint = FuellingPointMachine.TestCase
