"""Fuelling-point states (IFSF numbering) and the transitions a pump may report."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class FPState(IntEnum):
    """IFSF fuelling-point states 1..9, plus 10 Offline and 11 Error (ours, not IFSF)."""

    INOPERATIVE = 1
    CLOSED = 2
    IDLE = 3
    CALLING = 4
    AUTHORISED = 5
    STARTED = 6
    SUSPENDED_STARTED = 7
    FUELLING = 8
    SUSPENDED_FUELLING = 9
    # Outside IFSF: Offline is the server's view when the gateway's link is down (never sent by
    # a pump); Error is a pump fault the gateway reports as state 11.
    OFFLINE = 10
    ERROR = 11


S = FPState

# States in which an authorisation is being used (the pump has started).
ACTIVE: frozenset[FPState] = frozenset(
    {S.STARTED, S.SUSPENDED_STARTED, S.FUELLING, S.SUSPENDED_FUELLING}
)
# States in which product has flowed in the current transaction.
FLOWING: frozenset[FPState] = frozenset({S.FUELLING, S.SUSPENDED_FUELLING})
# States in which a nozzle must be out of its holster.
NOZZLE_OUT: frozenset[FPState] = frozenset({S.CALLING} | ACTIVE)
# States that refuse new authorisations and new sale locks.
UNAVAILABLE: frozenset[FPState] = frozenset({S.INOPERATIVE, S.CLOSED, S.OFFLINE, S.ERROR})
# States a gateway may put on the wire.
REPORTABLE: frozenset[FPState] = frozenset(s for s in FPState if s is not S.OFFLINE)

# Changes a pump may report (from -> to). Repeating the current state is always allowed and
# changes nothing. Offline is left only by `come_online`, which accepts any reported state.
REPORT_EDGES: Mapping[FPState, frozenset[FPState]] = {
    S.INOPERATIVE: frozenset({S.CLOSED, S.IDLE, S.ERROR}),
    S.CLOSED: frozenset({S.INOPERATIVE, S.IDLE, S.ERROR}),
    S.IDLE: frozenset({S.INOPERATIVE, S.CLOSED, S.CALLING, S.AUTHORISED, S.ERROR}),
    S.CALLING: frozenset({S.INOPERATIVE, S.CLOSED, S.IDLE, S.AUTHORISED, S.ERROR}),
    S.AUTHORISED: frozenset({S.IDLE, S.CALLING, S.STARTED, S.FUELLING, S.ERROR}),
    S.STARTED: frozenset({S.IDLE, S.SUSPENDED_STARTED, S.FUELLING, S.ERROR}),
    S.SUSPENDED_STARTED: frozenset({S.IDLE, S.STARTED, S.ERROR}),
    S.FUELLING: frozenset({S.IDLE, S.SUSPENDED_FUELLING, S.ERROR}),
    S.SUSPENDED_FUELLING: frozenset({S.IDLE, S.FUELLING, S.ERROR}),
    S.ERROR: frozenset({S.INOPERATIVE, S.CLOSED, S.IDLE}),
    S.OFFLINE: frozenset(),
}


def can_report(current: FPState, reported: FPState) -> bool:
    """Whether a pump may report `reported` while the server holds `current`."""
    return reported in REPORTABLE and (reported == current or reported in REPORT_EDGES[current])
