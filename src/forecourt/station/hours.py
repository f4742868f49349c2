"""Opening state from status and daily hours (pure)."""

from __future__ import annotations

from datetime import datetime

from forecourt.kit import clock


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def is_open(
    *,
    status: str,
    open_24h: bool,
    opens_at: str | None,
    closes_at: str | None,
    at: datetime,
) -> bool:
    """Whether an active station is open at `at` (business time; spans may cross midnight)."""
    if status != "active":
        return False
    if open_24h:
        return True
    if opens_at is None or closes_at is None:
        return False
    local = clock.local(at)
    now = local.hour * 60 + local.minute
    start, end = _minutes(opens_at), _minutes(closes_at)
    if start < end:
        return start <= now < end
    return now >= start or now < end
