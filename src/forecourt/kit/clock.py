"""The current time, in one place so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")

_offset = timedelta(0)


def now() -> datetime:
    """Aware current UTC time (shifted by `travel` in tests)."""
    return datetime.now(UTC) + _offset


def travel(delta: timedelta) -> None:
    """Shift the clock by `delta` (tests only)."""
    global _offset
    _offset += delta


def reset() -> None:
    """Undo every `travel`."""
    global _offset
    _offset = timedelta(0)


def local(moment: datetime) -> datetime:
    """The moment in business time (Asia/Shanghai)."""
    return moment.astimezone(BUSINESS_TZ)


def next_local_midnight(moment: datetime) -> datetime:
    """The next 24:00 in business time after `moment`, as UTC."""
    day = local(moment).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)
