"""Refusals of the fuelling-point domain; each `code` doubles as a station-alert kind."""

from __future__ import annotations

from forecourt.errors import Conflict
from forecourt.pump.domain.states import FPState


class PumpError(Conflict):
    """A pump action or report that the fuelling point refuses; nothing was changed."""

    code, title = "pump_conflict", "Pump conflict"


class IllegalTransition(PumpError):
    """The action or reported state is not allowed in the current state."""

    code, title = "illegal_transition", "Illegal fuelling-point transition"

    def __init__(self, from_state: FPState, action: str, detail: str | None = None) -> None:
        text = f"{action} is not allowed in state {from_state.name}"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.from_state = from_state
        self.action = action


class InvalidInput(PumpError):
    """A value is out of range (non-positive price, negative volume, naive time, ...)."""

    status, code, title = 422, "pump_invalid_input", "Invalid pump input"


class InvalidPreset(InvalidInput):
    """A preset must be a positive amount (fen) or volume (ml)."""

    code, title = "invalid_preset", "Invalid preset"


class UnknownNozzle(InvalidInput):
    """The nozzle number does not belong to this fuelling point."""

    code, title = "unknown_nozzle", "Unknown nozzle"

    def __init__(self, nozzle: int) -> None:
        super().__init__(f"nozzle {nozzle} is not on this fuelling point")
        self.nozzle = nozzle


class GradeMismatch(InvalidInput):
    """The sale's grade is not the grade configured on its nozzle."""

    code, title = "grade_mismatch", "Grade does not match nozzle"


class NozzleNotAuthorised(PumpError):
    """The authorisation is restricted to another nozzle."""

    code, title = "nozzle_not_authorised", "Nozzle not authorised"


class AmountMismatch(InvalidInput):
    """The sale amount does not equal volume x unit price within the tolerance."""

    code, title = "amount_mismatch", "Amount does not match volume and price"


class SequenceConflict(PumpError):
    """A sale reuses a known sequence number (TTC) with different facts, or jumps too far."""

    code, title = "sequence_conflict", "Sale sequence conflict"

    def __init__(self, seq: int, detail: str) -> None:
        super().__init__(f"seq {seq}: {detail}")
        self.seq = seq


class TotalizerRegression(PumpError):
    """A nozzle's totalizer would go backwards."""

    code, title = "totalizer_regression", "Totalizer went backwards"


class TotalizerMismatch(PumpError):
    """The sale volume or amount does not match the totalizer delta."""

    code, title = "totalizer_mismatch", "Sale does not match totalizers"


class UnknownSale(PumpError):
    """No sale with this sequence number is in the buffer."""

    status, code, title = 404, "unknown_sale", "Unknown sale"

    def __init__(self, seq: int) -> None:
        super().__init__(f"no sale with seq {seq}")
        self.seq = seq


class SaleLocked(PumpError):
    """The sale is locked by another order whose lock has not expired."""

    code, title = "sale_locked", "Sale locked by another order"

    def __init__(self, seq: int, locked_by: str) -> None:
        super().__init__(f"sale {seq} is locked by another order")
        self.seq = seq
        self.locked_by = locked_by


class SaleNotLocked(PumpError):
    """Clearing needs a lock held by the same order."""

    code, title = "sale_not_locked", "Sale not locked by this order"


class SaleAlreadyCleared(PumpError):
    """The sale has been paid and cleared; it can never be locked again."""

    code, title = "sale_cleared", "Sale already cleared"

    def __init__(self, seq: int) -> None:
        super().__init__(f"sale {seq} is already cleared")
        self.seq = seq
