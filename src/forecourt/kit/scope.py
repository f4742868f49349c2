"""Object-level scoping of staff to stations."""

from __future__ import annotations

from forecourt.auth.tokens import Principal
from forecourt.errors import NotFound


def can_see_station(principal: Principal, station_id: int) -> bool:
    """hq_admin sees every station; other staff only their own."""
    return principal.role == "hq_admin" or station_id in principal.station_ids


def require_station(principal: Principal, station_id: int) -> None:
    """404 (not 403) for a station outside the caller's scope, so ids do not leak."""
    if not can_see_station(principal, station_id):
        raise NotFound(f"station {station_id} not found")
