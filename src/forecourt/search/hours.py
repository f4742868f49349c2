"""Opening hours pre-parsed to minutes, for the index (same rules as `forecourt.station.hours`)."""

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


def is_open(*, open_24h: bool, opens: int, closes: int, minute: int) -> bool:
    """Open at `minute` given parsed hours; closes < opens spans midnight; equal means all day."""
    if open_24h:
        return True
    if opens == NO_TIME or closes == NO_TIME:
        return False
    if opens == closes:
        return True
    if opens < closes:
        return opens <= minute < closes
    return minute >= opens or minute < closes
