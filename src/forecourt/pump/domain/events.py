"""What a fuelling-point transition produced; the service persists, logs and fans these out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from forecourt.pump.domain.states import FPState

if TYPE_CHECKING:
    from forecourt.pump.domain.preset import Preset
    from forecourt.pump.domain.sales import Sale


@dataclass(frozen=True)
class StateChanged:
    """The fuelling point moved from one state to another."""

    from_state: FPState
    to_state: FPState
    action: str


@dataclass(frozen=True)
class Authorised:
    """The server authorised the pump (an order's preset, or an attendant with no order)."""

    order_id: str | None
    preset: Preset | None
    nozzle: int | None
    expires_at: datetime


@dataclass(frozen=True)
class AuthorisationEnded:
    """The authorisation is over: completed, stopped, expired, no_flow, error, closed, ..."""

    order_id: str | None
    reason: str


@dataclass(frozen=True)
class FuellingProgressed:
    """Running totals of the current transaction."""

    volume_ml: int
    amount_fen: int
    unit_price_fen: int


@dataclass(frozen=True)
class PresetReached:
    """Progress reached the preset: the pump should stop now."""

    preset: Preset


@dataclass(frozen=True)
class PresetExceeded:
    """The pump ran past its preset by more than the tolerance (alert)."""

    preset: Preset
    over_by: int


@dataclass(frozen=True)
class FuellingEnded:
    """Product stopped flowing; the completed sale follows as its own message."""

    nozzle: int | None
    volume_ml: int
    amount_fen: int
    unit_price_fen: int
    order_id: str | None


@dataclass(frozen=True)
class ErrorReported:
    """The pump reported a fault."""

    code: str


@dataclass(frozen=True)
class WentOffline:
    """The gateway's link is down; the state before is kept for the return."""

    previous: FPState


@dataclass(frozen=True)
class CameOnline:
    """The link is back; the pump's reported state replaces the remembered one."""

    previous: FPState
    state: FPState


@dataclass(frozen=True)
class SalesBehind:
    """The pump holds sales the server has not seen: re-read TTCs from_seq..to_seq."""

    from_seq: int
    to_seq: int


@dataclass(frozen=True)
class SaleRecorded:
    """A new sale entered the buffer (locked at once when it carries an order's auth_ref)."""

    sale: Sale


@dataclass(frozen=True)
class SaleDuplicate:
    """A redelivered sale; ignored. `verified` is False when the original is no longer held."""

    seq: int
    verified: bool


@dataclass(frozen=True)
class SaleGap:
    """Sequence numbers skipped by the latest sale: re-read them by TTC."""

    missing: tuple[int, ...]


@dataclass(frozen=True)
class SaleGapFilled:
    """A re-read sale filled a gap."""

    seq: int


@dataclass(frozen=True)
class SaleLockAcquired:
    """An order locked a sale (or refreshed its own lock, or took over an expired one)."""

    seq: int
    order_id: str
    expires_at: datetime | None
    taken_over_from: str | None


@dataclass(frozen=True)
class SaleUnlocked:
    """The locking order released the sale; it is payable again."""

    seq: int
    order_id: str


@dataclass(frozen=True)
class SaleCleared:
    """The locking order paid; the sale is cleared for good."""

    seq: int
    order_id: str


Event = (
    StateChanged
    | Authorised
    | AuthorisationEnded
    | FuellingProgressed
    | PresetReached
    | PresetExceeded
    | FuellingEnded
    | ErrorReported
    | WentOffline
    | CameOnline
    | SalesBehind
    | SaleRecorded
    | SaleDuplicate
    | SaleGap
    | SaleGapFilled
    | SaleLockAcquired
    | SaleUnlocked
    | SaleCleared
)
