"""Station alerts: one open row per (station, kind, code), counting occurrences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.errors import NotFound
from forecourt.pump import repository
from forecourt.pump.models import StationAlert

DETAIL_MAX = 2000

# Alert kinds raised by the pump link (the code says what exactly).
BAD_INPUT = "pump_input"  # a gateway message was refused (code: the refusal reason)
PUMP_FAULT = "pump_fault"  # a pump reported state 11 (code: its error_code)
GATEWAY_OFFLINE = "gateway_offline"  # the gateway's last will arrived
COMMAND_REJECTED = "command_rejected"  # the gateway answered `rejected` (code: its reason)
COMMAND_TIMEOUT = "command_timeout"  # no answer before valid_until (code: the command type)


async def raise_alert(
    session: AsyncSession, *, station_id: int, kind: str, code: str, detail: str, now: datetime
) -> StationAlert:
    """Open an alert, or count one more occurrence of the open one (newest detail wins)."""
    row = await repository.open_alert(session, station_id=station_id, kind=kind, code=code)
    detail = detail[:DETAIL_MAX]
    if row is None:
        row = StationAlert(
            station_id=station_id,
            kind=kind,
            code=code[:60],
            detail=detail,
            occurrences=1,
            created_at=now,
            last_seen_at=now,
        )
        await repository.add(session, row)
        return row
    row.occurrences += 1
    row.detail = detail
    row.last_seen_at = now
    await session.flush()
    return row


async def resolve_open(
    session: AsyncSession, *, station_id: int, kind: str, code: str, now: datetime
) -> bool:
    """Resolve the open alert of this kind and code, if any (e.g. the gateway is back)."""
    row = await repository.open_alert(session, station_id=station_id, kind=kind, code=code)
    if row is None:
        return False
    row.resolved_at = now
    await session.flush()
    return True


async def list_alerts(
    session: AsyncSession, *, station_id: int, open_only: bool = True, limit: int = 100
) -> list[StationAlert]:
    """Alerts of a station, most recently seen first."""
    return await repository.alerts(session, station_id=station_id, open_only=open_only, limit=limit)


async def resolve(
    session: AsyncSession, *, station_id: int, alert_id: int, now: datetime
) -> StationAlert:
    """Mark an alert handled (idempotent); 404 when it is not the station's."""
    row = await repository.alert(session, station_id=station_id, alert_id=alert_id)
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
    if row.resolved_at is None:
        row.resolved_at = now
        await session.flush()
    return row
