"""The audit log: `record` is called by the services and routes whose actions it lists.

An entry is added to the caller's unit of work, so a refused or rolled-back action leaves
nothing behind. Details never hold card numbers or plain phone numbers: both are masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.backoffice import repository
from forecourt.backoffice.models import AuditEntry
from forecourt.backoffice.schemas import AuditOut, AuditPage
from forecourt.errors import FieldError, Unprocessable
from forecourt.kit import clock
from forecourt.kit.pan import find_pans
from forecourt.kit.phones import mask
from forecourt.kit.scope import require_station

Action = Literal[
    "price.scheduled",
    "price.cancelled",
    "refund.requested",
    "refund.decided",
    "points.adjusted",
    "sale.locked",
    "sale.cleared",
    "pump.stopped",
    "shift.opened",
    "shift.closed",
    "staff.created",
    "staff.updated",
]
ACTIONS: Final[tuple[str, ...]] = get_args(Action)
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def scrub(value: Any) -> Any:
    """A JSON-safe copy of `value` with card numbers and mobile numbers masked."""
    if isinstance(value, str):
        for pan in find_pans(value):
            value = value.replace(pan, f"{pan[:4]}****{pan[-4:]}")
        return _PHONE.sub(lambda m: mask(m.group(0)), value)
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def record(
    session: AsyncSession,
    principal: Principal,
    action: Action,
    *,
    subject_type: str,
    subject_id: str | int,
    station_id: int | None = None,
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Add an audit entry for a staff action to the current unit of work."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action}")
    entry = AuditEntry(
        at=now or clock.now(),
        staff_id=principal.id,
        station_id=station_id,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        details=scrub(dict(details or {})),
    )
    session.add(entry)
    return entry


def parse_cursor(raw: str | None) -> int | None:
    """A page cursor (the last id seen), or None."""
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Unprocessable("bad cursor", errors=[FieldError("cursor", "not a cursor we gave")])
    return int(raw)


async def page(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int | None,
    action: str | None,
    staff_id: int | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> AuditPage:
    """Audit entries the caller may see: all (hq_admin) or their stations' (manager)."""
    station_ids: list[int] | None = None
    if station_id is not None:
        require_station(principal, station_id)
        station_ids = [station_id]
    elif principal.role != "hq_admin":
        station_ids = sorted(principal.station_ids)
    rows = await repository.audit_page(
        session,
        station_ids=station_ids,
        action=action,
        staff_id=staff_id,
        since=since,
        until=until,
        before_id=parse_cursor(cursor),
        limit=limit,
    )
    items = [
        AuditOut(
            id=e.id,
            at=e.at,
            staff_id=e.staff_id,
            staff_name=name,
            station_id=e.station_id,
            action=e.action,
            subject_type=e.subject_type,
            subject_id=e.subject_id,
            details=e.details,
        )
        for e, name in rows
    ]
    return AuditPage(items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)
