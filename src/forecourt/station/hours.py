"""Opening hours: the one rule for station pages, nearby search and its index (pure).

Hours are "HH:MM" strings in business time (Asia/Shanghai), 00:00 to 24:00. A station is open
when it is `active` and either `open_24h`, or the local minute `m` satisfies:

- `opens < closes`: `opens <= m < closes` (a day span, e.g. 06:00-22:00);
- `opens > closes`: `m >= opens or m < closes` (the span crosses midnight, e.g. 22:00-06:00);
- `opens == closes` (24:00 counts as 00:00): open around the clock. Station edits refuse equal
  times (use `open_24h`), but rows written otherwise (imports, old data) may hold them.

A missing or unreadable time means closed (unless `open_24h`).
"""

from __future__ import annotations

from datetime import datetime

from forecourt.kit import clock

MINUTES_PER_DAY = 24 * 60
NO_TIME = -1
"""Sentinel minute for a missing or unreadable opening/closing time."""


def parse_hhmm(value: str | None) -> int:
    """Minutes after midnight for "HH:MM" (00:00 to 24:00); `NO_TIME` when absent or invalid."""
    if not value or len(value) != 5 or value[2] != ":":
        return NO_TIME
    hh, mm = value[:2], value[3:]
    if not (hh.isdigit() and mm.isdigit()):
        return NO_TIME
    minutes = int(hh) * 60 + int(mm)
    if int(mm) >= 60 or minutes > MINUTES_PER_DAY:
        return NO_TIME
    return minutes


def minute_of_day(moment: datetime) -> int:
    """Minutes after local midnight (Asia/Shanghai) of an aware moment."""
    local = clock.local(moment)
    return local.hour * 60 + local.minute


def open_at_minute(*, open_24h: bool, opens: int, closes: int, minute: int) -> bool:
    """Open at `minute` of the business day given parsed hours (the module's rule)."""
    if open_24h:
        return True
    if opens == NO_TIME or closes == NO_TIME:
        return False
    if opens % MINUTES_PER_DAY == closes % MINUTES_PER_DAY:
        return True
    if opens < closes:
        return opens <= minute < closes
    return minute >= opens or minute < closes


def is_open(
    *,
    status: str,
    open_24h: bool,
    opens_at: str | None,
    closes_at: str | None,
    at: datetime,
) -> bool:
    """Whether a station is open at the moment `at` (only `active` stations ever are)."""
    if status != "active":
        return False
    return open_at_minute(
        open_24h=open_24h,
        opens=parse_hhmm(opens_at),
        closes=parse_hhmm(closes_at),
        minute=minute_of_day(at),
    )
