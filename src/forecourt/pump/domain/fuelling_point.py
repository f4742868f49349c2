"""One fuelling point as the server mirrors it: state, authorisation, progress, sale buffer.

Pure: no I/O, no clock (callers pass `now`), no database. Every public method either applies
a whole change and returns the events it produced, or raises a `PumpError` and changes
nothing, so the caller can log and count the refusal and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from forecourt.pump.domain.errors import (
    AmountMismatch,
    GradeMismatch,
    IllegalTransition,
    InvalidInput,
    NozzleNotAuthorised,
    UnknownNozzle,
)
from forecourt.pump.domain.events import (
    AuthorisationEnded,
    Authorised,
    CameOnline,
    ErrorReported,
    Event,
    FuellingEnded,
    FuellingProgressed,
    PresetExceeded,
    PresetReached,
    SalesBehind,
    StateChanged,
    WentOffline,
)
from forecourt.pump.domain.preset import Preset, amount_matches
from forecourt.pump.domain.sales import MAX_SEQ, Sale, SaleBuffer, Totals, require_aware
from forecourt.pump.domain.states import ACTIVE, FLOWING, NOZZLE_OUT, REPORT_EDGES, FPState
from forecourt.pump.domain.values import Authorisation, Nozzle, Progress

S = FPState


@dataclass
class FuellingPoint:
    """The server's mirror of one fuelling point (IFSF FP) and its sale buffer."""

    number: int
    nozzles: Mapping[int, Nozzle]
    state: FPState = FPState.CLOSED
    nozzle: int | None = None
    authorisation: Authorisation | None = None
    progress: Progress | None = None
    buffer: SaleBuffer = field(default_factory=SaleBuffer)
    error_code: str | None = None
    state_before_offline: FPState | None = None
    volume_resolution_ml: int = 1

    def __post_init__(self) -> None:
        if self.number < 1:
            raise InvalidInput("fuelling point numbers start at 1")
        if not self.nozzles or any(n.number != k for k, n in self.nozzles.items()):
            raise InvalidInput("nozzles must be a non-empty map of number -> Nozzle")
        if self.volume_resolution_ml < 1:
            raise InvalidInput("volume resolution must be at least 1 ml")

    # -- views ---------------------------------------------------------------------------

    @property
    def sales(self) -> list[Sale]:
        """The sale buffer in seq order."""
        return self.buffer.sales

    @property
    def last_seq(self) -> int | None:
        """Highest accepted sale sequence number (TTC)."""
        return self.buffer.last_seq

    @property
    def totalizers(self) -> dict[int, Totals]:
        """Latest meter readings per nozzle."""
        return self.buffer.totalizers

    def payable_sales(self, now: datetime) -> list[Sale]:
        """Sales a driver may pay at `now` (payable, or locked with an expired lock)."""
        require_aware(now, "now")
        return self.buffer.payable(now)

    def remaining(self) -> int | None:
        """What is left of the preset (fen or ml) given progress; None without a preset."""
        auth = self.authorisation
        if auth is None or auth.preset is None:
            return None
        p = self.progress
        return auth.preset.remaining(
            volume_ml=p.volume_ml if p else 0, amount_fen=p.amount_fen if p else 0
        )

    def should_stop(self) -> bool:
        """Whether progress has reached the preset."""
        return self.remaining() == 0

    # -- administration ------------------------------------------------------------------

    def open(self) -> list[Event]:
        """Closed -> Idle."""
        return self._simple("open", {S.CLOSED}, S.IDLE)

    def close(self) -> list[Event]:
        """Idle or Calling -> Closed."""
        return self._simple("close", {S.IDLE, S.CALLING}, S.CLOSED, reason="closed")

    def set_inoperative(self) -> list[Event]:
        """Closed, Idle, Calling or Error -> Inoperative (taken out of service)."""
        froms = {S.CLOSED, S.IDLE, S.CALLING, S.ERROR}
        return self._simple("set_inoperative", froms, S.INOPERATIVE, reason="inoperative")

    def enable(self) -> list[Event]:
        """Inoperative -> Closed."""
        return self._simple("enable", {S.INOPERATIVE}, S.CLOSED)

    # -- the driver and the pump ---------------------------------------------------------

    def nozzle_lifted(self, nozzle: int) -> list[Event]:
        """Idle -> Calling; Authorised (nozzle in holster) -> Started."""
        self._require_nozzle(nozzle)
        if self.state is S.IDLE:
            return self._enter(S.CALLING, "nozzle_lifted", nozzle=nozzle)
        if self.state is S.AUTHORISED and self.nozzle is None:
            self._require_authorised_nozzle(nozzle)
            return self._enter(S.STARTED, "nozzle_lifted", nozzle=nozzle)
        raise IllegalTransition(self.state, "nozzle_lifted")

    def nozzle_hung(self) -> list[Event]:
        """Back in the holster: Calling/Started/Fuelling -> Idle; Authorised stays Authorised."""
        if self.nozzle is None:
            raise IllegalTransition(self.state, "nozzle_hung", "no nozzle is lifted")
        if self.state is S.AUTHORISED:
            self.nozzle = None
            return []
        if self.state in NOZZLE_OUT:
            return self._enter(S.IDLE, "nozzle_hung")
        raise IllegalTransition(self.state, "nozzle_hung")

    def authorise(
        self,
        *,
        preset: Preset | None,
        order_id: str | None,
        now: datetime,
        ttl: timedelta,
        nozzle: int | None = None,
    ) -> list[Event]:
        """Idle or Calling -> Authorised until now + ttl, optionally with a preset and nozzle."""
        require_aware(now, "now")
        if ttl <= timedelta(0):
            raise InvalidInput("authorisation ttl must be positive")
        if self.state not in (S.IDLE, S.CALLING):
            raise IllegalTransition(self.state, "authorise")
        if nozzle is not None:
            self._require_nozzle(nozzle)
            if self.nozzle is not None and self.nozzle != nozzle:
                raise NozzleNotAuthorised(f"nozzle {self.nozzle} is lifted, not {nozzle}")
        auth = Authorisation(order_id, preset, nozzle, now, now + ttl)
        events = self._enter(S.AUTHORISED, "authorise", nozzle=self.nozzle)
        self.authorisation = auth
        return [*events, Authorised(order_id, preset, nozzle, now + ttl)]

    def start(self) -> list[Event]:
        """Authorised (nozzle lifted) -> Started: the pump switched on."""
        if self.state is not S.AUTHORISED or self.nozzle is None:
            raise IllegalTransition(self.state, "start")
        return self._enter(S.STARTED, "start", nozzle=self.nozzle)

    def flow(self, *, volume_ml: int, amount_fen: int, unit_price_fen: int) -> list[Event]:
        """Progress: Started -> Fuelling at the first ml; updates totals; stale ones ignored."""
        if volume_ml < 0 or amount_fen < 0 or unit_price_fen <= 0:
            raise InvalidInput("progress needs volume >= 0, amount >= 0 and price > 0")
        if self.state not in ACTIVE:
            raise IllegalTransition(self.state, "flow")
        old = self.progress
        if old is not None and (volume_ml < old.volume_ml or amount_fen < old.amount_fen):
            return []  # a late or repeated progress message: the newer one already counted
        events: list[Event] = []
        if self.state is S.STARTED and volume_ml > 0:
            events += self._enter(S.FUELLING, "flow", nozzle=self.nozzle)
        self.progress = Progress(volume_ml, amount_fen, unit_price_fen)
        events.append(FuellingProgressed(volume_ml, amount_fen, unit_price_fen))
        events += self._preset_events(old)
        return events

    def suspend(self) -> list[Event]:
        """Started -> Suspended Started; Fuelling -> Suspended Fuelling."""
        to = {S.STARTED: S.SUSPENDED_STARTED, S.FUELLING: S.SUSPENDED_FUELLING}
        if self.state not in to:
            raise IllegalTransition(self.state, "suspend")
        return self._enter(to[self.state], "suspend", nozzle=self.nozzle)

    def resume(self) -> list[Event]:
        """Suspended Started -> Started; Suspended Fuelling -> Fuelling."""
        to = {S.SUSPENDED_STARTED: S.STARTED, S.SUSPENDED_FUELLING: S.FUELLING}
        if self.state not in to:
            raise IllegalTransition(self.state, "resume")
        return self._enter(to[self.state], "resume", nozzle=self.nozzle)

    def stop(self) -> list[Event]:
        """End the authorisation: Authorised -> Idle (Calling with a nozzle out); active -> Idle."""
        if self.state is S.AUTHORISED:
            to = S.CALLING if self.nozzle is not None else S.IDLE
            return self._enter(to, "stop", reason="stopped", nozzle=self.nozzle)
        if self.state in ACTIVE:
            return self._enter(S.IDLE, "stop", reason="stopped")
        raise IllegalTransition(self.state, "stop")

    def expire(self, now: datetime) -> list[Event]:
        """Drop an unused server authorisation once `now` >= its expiry; otherwise nothing."""
        require_aware(now, "now")
        auth = self.authorisation
        if self.state is not S.AUTHORISED or auth is None or auth.expires_at is None:
            return []
        if now < auth.expires_at:
            return []
        to = S.CALLING if self.nozzle is not None else S.IDLE
        return self._enter(to, "expire", reason="expired", nozzle=self.nozzle)

    def error(self, code: str) -> list[Event]:
        """Any online state -> Error (ends the authorisation; a sale may still follow)."""
        if self.state is S.OFFLINE:
            raise IllegalTransition(self.state, "error")
        if not code:
            raise InvalidInput("an error needs a code")
        if self.state is S.ERROR:
            if code == self.error_code:
                return []
            self.error_code = code
            return [ErrorReported(code)]
        events = self._enter(S.ERROR, "error", reason="error")
        self.error_code = code
        return [*events, ErrorReported(code)]

    # -- the link ------------------------------------------------------------------------

    def go_offline(self) -> list[Event]:
        """The gateway's link dropped: -> Offline, keeping authorisation, progress and sales."""
        if self.state is S.OFFLINE:
            return []
        previous = self.state
        self.state_before_offline = previous
        self.state = S.OFFLINE
        return [StateChanged(previous, S.OFFLINE, "go_offline"), WentOffline(previous)]

    def come_online(
        self,
        state: FPState,
        *,
        nozzle: int | None = None,
        error_code: str | None = None,
        last_seq: int | None = None,
    ) -> list[Event]:
        """Offline -> the state the pump reports (anything can have happened meanwhile)."""
        if self.state is not S.OFFLINE:
            raise IllegalTransition(self.state, "come_online")
        self._check_report(state, nozzle, error_code, last_seq)
        previous = self.state_before_offline or S.IDLE
        self.state = previous
        self.state_before_offline = None
        effects = self._apply(state, "come_online", nozzle, error_code, reason="link_lost")
        return [
            StateChanged(S.OFFLINE, state, "come_online"),
            CameOnline(previous, state),
            *(e for e in effects if not isinstance(e, StateChanged)),
            *self._behind(last_seq),
        ]

    def apply_state_report(
        self,
        state: FPState,
        *,
        nozzle: int | None = None,
        error_code: str | None = None,
        last_seq: int | None = None,
    ) -> list[Event]:
        """Mirror the pump's reported state; an illegal change is refused (IllegalTransition)."""
        if self.state is S.OFFLINE:
            return self.come_online(state, nozzle=nozzle, error_code=error_code, last_seq=last_seq)
        self._check_report(state, nozzle, error_code, last_seq)
        if state != self.state and state not in REPORT_EDGES[self.state]:
            raise IllegalTransition(self.state, f"report {state.name}")
        if state is S.STARTED and self.state is S.AUTHORISED and nozzle is not None:
            self._require_authorised_nozzle(nozzle)
        events = self._apply(state, "report", nozzle, error_code, reason="ended")
        return events + self._behind(last_seq)

    # -- sales ---------------------------------------------------------------------------

    def record_sale(self, sale: Sale) -> list[Event]:
        """Add a completed sale to the buffer (dedup by seq; gaps reported; meters checked)."""
        self._require_nozzle(sale.nozzle)
        expected = self.nozzles[sale.nozzle].grade
        if sale.grade != expected:
            raise GradeMismatch(f"nozzle {sale.nozzle} dispenses {expected}, not {sale.grade}")
        if not amount_matches(
            sale.volume_ml, sale.unit_price_fen, sale.amount_fen, self.volume_resolution_ml
        ):
            raise AmountMismatch(
                f"sale {sale.seq}: {sale.amount_fen} fen for {sale.volume_ml} ml at "
                f"{sale.unit_price_fen} fen/L"
            )
        return self.buffer.record(sale, volume_tolerance_ml=self.volume_resolution_ml)

    def lock_sale(self, seq: int, order_id: str, now: datetime, ttl: timedelta) -> list[Event]:
        """Lock a payable sale for an order (refused while the pump is offline)."""
        if self.state is S.OFFLINE:
            raise IllegalTransition(self.state, "lock_sale")
        return self.buffer.lock(seq, order_id, now, ttl)

    def unlock_sale(self, seq: int, order_id: str) -> list[Event]:
        """Release the order's lock; the sale is payable again."""
        return self.buffer.unlock(seq, order_id)

    def clear_sale(self, seq: int, order_id: str) -> list[Event]:
        """The locking order paid: the sale is cleared (idempotent for that order)."""
        return self.buffer.clear(seq, order_id)

    # -- internals -----------------------------------------------------------------------

    def _require_nozzle(self, nozzle: int) -> None:
        if nozzle not in self.nozzles:
            raise UnknownNozzle(nozzle)

    def _require_authorised_nozzle(self, nozzle: int) -> None:
        auth = self.authorisation
        if auth is not None and auth.nozzle is not None and auth.nozzle != nozzle:
            raise NozzleNotAuthorised(f"only nozzle {auth.nozzle} is authorised, not {nozzle}")

    def _simple(
        self, action: str, froms: set[FPState], to: FPState, reason: str = "ended"
    ) -> list[Event]:
        if self.state not in froms:
            raise IllegalTransition(self.state, action)
        return self._enter(to, action, reason=reason)

    def _check_report(
        self, state: FPState, nozzle: int | None, error_code: str | None, last_seq: int | None
    ) -> None:
        if state is S.OFFLINE:
            raise IllegalTransition(self.state, "report OFFLINE", "a pump never reports Offline")
        if nozzle is not None:
            self._require_nozzle(nozzle)
        if state in NOZZLE_OUT and nozzle is None and self.nozzle is None:
            raise IllegalTransition(self.state, f"report {state.name}", "no nozzle given")
        if state is S.ERROR and not (error_code or self.error_code):
            raise InvalidInput("an Error report needs an error code")
        if last_seq is not None and not 0 <= last_seq <= MAX_SEQ:
            raise InvalidInput(f"last_seq must be 0..{MAX_SEQ}")

    def _apply(
        self,
        state: FPState,
        action: str,
        nozzle: int | None,
        error_code: str | None,
        *,
        reason: str,
    ) -> list[Event]:
        """Move to a reported state (already checked) with the usual side effects."""
        if state is self.state:
            if nozzle is not None and state in NOZZLE_OUT | {S.AUTHORISED}:
                self.nozzle = nozzle
            if state is S.ERROR and error_code and error_code != self.error_code:
                self.error_code = error_code
                return [ErrorReported(error_code)]
            return []
        keep = nozzle if nozzle is not None else self.nozzle
        events = self._enter(state, action, reason=reason, nozzle=keep)
        if state is S.ERROR:
            self.error_code = error_code or self.error_code
            assert self.error_code is not None
            events.append(ErrorReported(self.error_code))
        return events

    def _enter(
        self, to: FPState, action: str, *, reason: str = "ended", nozzle: int | None = None
    ) -> list[Event]:
        """Change state with its side effects on nozzle, authorisation and progress."""
        old = self.state
        events: list[Event] = [StateChanged(old, to, action)]
        auth = self.authorisation
        if to in ACTIVE or to is S.AUTHORISED:
            if auth is None:
                self.authorisation = Authorisation()  # authorised at the pump itself
            if old not in ACTIVE:
                self.progress = None  # a new transaction
        else:
            if old in FLOWING and self.progress is not None:
                p = self.progress
                order = auth.order_id if auth else None
                events.append(
                    FuellingEnded(self.nozzle, p.volume_ml, p.amount_fen, p.unit_price_fen, order)
                )
            if auth is not None:
                events.append(AuthorisationEnded(auth.order_id, _end_reason(old, to, reason)))
            self.authorisation = None
            self.progress = None
        if to is not S.ERROR:
            self.error_code = None
        self.nozzle = nozzle if (to in NOZZLE_OUT or to is S.AUTHORISED) else None
        self.state = to
        return events

    def _preset_events(self, old: Progress | None) -> list[Event]:
        auth, new = self.authorisation, self.progress
        if auth is None or auth.preset is None or new is None:
            return []
        preset = auth.preset
        events: list[Event] = []
        before = preset.remaining(
            volume_ml=old.volume_ml if old else 0, amount_fen=old.amount_fen if old else 0
        )
        if before > 0 and preset.remaining(volume_ml=new.volume_ml, amount_fen=new.amount_fen) == 0:
            events.append(PresetReached(preset))
        over = preset.overrun(volume_ml=new.volume_ml, amount_fen=new.amount_fen)
        was_over = preset.overrun(
            volume_ml=old.volume_ml if old else 0, amount_fen=old.amount_fen if old else 0
        )
        tolerance = preset.tolerance(
            unit_price_fen=new.unit_price_fen, volume_resolution_ml=self.volume_resolution_ml
        )
        if over > tolerance >= was_over:  # alert once, when the overrun passes the tolerance
            events.append(PresetExceeded(preset, over))
        return events

    def _behind(self, last_seq: int | None) -> list[Event]:
        # Without any history the pump's older sales predate us: nothing to re-read.
        known = self.buffer.last_seq
        if known is not None and last_seq is not None and last_seq > known:
            return [SalesBehind(known + 1, last_seq)]
        return []


def _end_reason(old: FPState, to: FPState, reason: str) -> str:
    """Why an authorisation ended: the caller's reason, else what the states say."""
    if reason != "ended":
        return reason
    if to is S.ERROR:
        return "error"
    if old in FLOWING:
        return "completed"
    if old in ACTIVE:
        return "no_flow"
    return reason
