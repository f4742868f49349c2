"""Staff accounts: creation (also for seeds), listing and changes, scoped to the caller.

hq_admin manages everyone; a station manager manages only the attendants of their own stations
and gets 404 for anyone else, so ids outside their scope do not leak.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth import repository
from forecourt.auth.errors import LastHqAdmin, UsernameTaken
from forecourt.auth.models import Staff
from forecourt.auth.passwords import hash_password
from forecourt.auth.schemas import StaffCreate, StaffOut, StaffPage, StaffUpdate
from forecourt.auth.tokens import Principal
from forecourt.errors import FieldError, Forbidden, NotFound, Unprocessable
from forecourt.kit import clock

log = logging.getLogger(__name__)


def staff_out(staff: Staff, station_ids: list[int]) -> StaffOut:
    """The API view of a staff account."""
    return StaffOut(
        id=staff.id,
        username=staff.username,
        display_name=staff.display_name,
        role=staff.role,
        active=staff.active,
        station_ids=station_ids,
        created_at=staff.created_at,
    )


async def _check_stations(
    session: AsyncSession, *, role: str, station_ids: Iterable[int]
) -> list[int]:
    wanted = sorted(set(station_ids))
    if role == "hq_admin" and wanted:
        raise Unprocessable(
            "head-office administrators are not tied to stations",
            errors=[FieldError("body.station_ids", "must be empty for hq_admin")],
        )
    if role != "hq_admin" and not wanted:
        raise Unprocessable(
            f"a {role} needs at least one station",
            errors=[FieldError("body.station_ids", f"at least one station for {role}")],
        )
    missing = set(wanted) - await repository.existing_station_ids(session, wanted)
    if missing:
        listed = ", ".join(str(i) for i in sorted(missing))
        raise Unprocessable(
            f"unknown station(s): {listed}",
            errors=[FieldError("body.station_ids", f"unknown station(s): {listed}")],
        )
    return wanted


async def create_staff(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    display_name: str,
    role: str,
    station_ids: Iterable[int] = (),
    active: bool = True,
) -> Staff:
    """Create a staff account with a password and stations (no caller checks: seeds, tests)."""
    username = username.lower()
    stations = await _check_stations(session, role=role, station_ids=station_ids)
    password_hash = await asyncio.to_thread(hash_password, password)
    staff_id = await repository.insert_staff(
        session,
        username=username,
        password_hash=password_hash,
        display_name=display_name,
        role=role,
        active=active,
        created_at=clock.now(),
    )
    if staff_id is None:
        raise UsernameTaken(
            f"username {username} is taken", errors=[FieldError("body.username", "already taken")]
        )
    await repository.set_station_ids(session, staff_id=staff_id, station_ids=stations)
    staff = await repository.get_staff(session, staff_id)
    assert staff is not None
    return staff


def _visible(principal: Principal, staff: Staff, station_ids: Iterable[int]) -> bool:
    """hq_admin sees everyone; a station manager sees the attendants of their stations."""
    if principal.role == "hq_admin":
        return True
    return (
        principal.role == "station_manager"
        and staff.role == "attendant"
        and not principal.station_ids.isdisjoint(station_ids)
    )


async def _load_visible(
    session: AsyncSession, *, principal: Principal, staff_id: int
) -> tuple[Staff, list[int]]:
    staff = await repository.get_staff(session, staff_id)
    stations = (await repository.station_ids_of(session, [staff_id]))[staff_id] if staff else []
    if staff is None or not _visible(principal, staff, stations):
        raise NotFound(f"staff {staff_id} not found")
    return staff, stations


def _manager_rules(principal: Principal, *, role: str | None, station_ids: Iterable[int]) -> None:
    if principal.role == "hq_admin":
        return
    if role is not None and role != "attendant":
        raise Forbidden(
            "station managers may only manage attendants",
            errors=[FieldError("body.role", "must be attendant")],
        )
    foreign = sorted(set(station_ids) - principal.station_ids)
    if foreign:
        listed = ", ".join(str(i) for i in foreign)
        raise Forbidden(
            f"not your station(s): {listed}",
            errors=[FieldError("body.station_ids", f"not your station(s): {listed}")],
        )


async def list_staff(
    session: AsyncSession,
    *,
    principal: Principal,
    role: str | None,
    station_id: int | None,
    active: bool | None,
    offset: int,
    limit: int,
) -> StaffPage:
    """Staff the caller may manage: everyone (hq_admin) or their stations' attendants."""
    within: frozenset[int] | None = None
    if principal.role != "hq_admin":
        within = principal.station_ids
        if role not in (None, "attendant"):
            return StaffPage(items=[], total=0, offset=offset, limit=limit)
        role = "attendant"
    rows, total = await repository.page_staff(
        session,
        within_stations=within,
        role=role,
        station_id=station_id,
        active=active,
        offset=offset,
        limit=limit,
    )
    stations = await repository.station_ids_of(session, [s.id for s in rows])
    items = [staff_out(s, stations[s.id]) for s in rows]
    return StaffPage(items=items, total=total, offset=offset, limit=limit)


async def get_staff(session: AsyncSession, *, principal: Principal, staff_id: int) -> StaffOut:
    """One staff account within the caller's scope (404 outside it)."""
    staff, stations = await _load_visible(session, principal=principal, staff_id=staff_id)
    return staff_out(staff, stations)


async def create_staff_as(
    session: AsyncSession, *, principal: Principal, data: StaffCreate
) -> StaffOut:
    """Create a staff account; a station manager may only add attendants to their stations."""
    _manager_rules(principal, role=data.role, station_ids=data.station_ids)
    staff = await create_staff(
        session,
        username=data.username,
        password=data.password,
        display_name=data.display_name,
        role=data.role,
        station_ids=data.station_ids,
    )
    log.info("staff created", extra={"staff_id": staff.id, "by": principal.subject})
    return staff_out(staff, sorted(set(data.station_ids)))


async def update_staff(
    session: AsyncSession, *, principal: Principal, staff_id: int, data: StaffUpdate
) -> StaffOut:
    """Change name, role, active flag or stations of an account within the caller's scope."""
    staff, current = await _load_visible(session, principal=principal, staff_id=staff_id)
    changes = data.model_fields_set
    _manager_rules(principal, role=data.role, station_ids=data.station_ids or ())
    role = data.role if data.role is not None else staff.role
    if data.station_ids is not None:
        requested = set(data.station_ids)
        if principal.role != "hq_admin":
            # A manager edits only their own stations; others the attendant works at stay.
            requested |= set(current) - principal.station_ids
        stations = await _check_stations(session, role=role, station_ids=requested)
    elif role == "hq_admin":
        stations = []
    else:
        stations = await _check_stations(session, role=role, station_ids=current)
    demoted = staff.role == "hq_admin" and (
        role != "hq_admin" or (data.active is False and staff.active)
    )
    if demoted and await repository.count_active_admins(session, excluding=staff.id) == 0:
        raise LastHqAdmin("at least one active hq_admin must remain")
    if data.active is False and staff.id == principal.id and principal.kind == "staff":
        raise Unprocessable(
            "you cannot deactivate your own account",
            errors=[FieldError("body.active", "cannot deactivate yourself")],
        )
    if "display_name" in changes and data.display_name is not None:
        staff.display_name = data.display_name
    staff.role = role
    if data.active is not None:
        staff.active = data.active
    if stations != current:
        await repository.set_station_ids(session, staff_id=staff.id, station_ids=stations)
    if data.active is False:
        await repository.revoke_subject(session, subject=f"staff:{staff.id}", now=clock.now())
    await session.flush()
    log.info(
        "staff updated",
        extra={"staff_id": staff.id, "by": principal.subject, "fields": sorted(changes)},
    )
    return staff_out(staff, stations)


async def reset_password(
    session: AsyncSession, *, principal: Principal, staff_id: int, password: str
) -> None:
    """Set a new password for an account within the caller's scope; its sessions end."""
    staff, _ = await _load_visible(session, principal=principal, staff_id=staff_id)
    staff.password_hash = await asyncio.to_thread(hash_password, password)
    await repository.revoke_subject(session, subject=f"staff:{staff.id}", now=clock.now())
    await session.flush()
    log.info("staff password reset", extra={"staff_id": staff.id, "by": principal.subject})
