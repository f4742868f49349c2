"""Errors of the back office (stable codes)."""

from __future__ import annotations

from forecourt.errors import Conflict, NotFound


class ShiftAlreadyOpen(Conflict):
    """The station already has an open shift."""

    code, title = "shift_already_open", "A shift is already open at this station"


class ShiftClosed(Conflict):
    """The shift was closed already."""

    code, title = "shift_closed", "Shift already closed"


class ShiftNotFound(NotFound):
    """No such shift in the caller's scope."""

    code, title = "shift_not_found", "Shift not found"
