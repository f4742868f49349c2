"""All SQL for members, staff, SMS codes and refresh tokens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.models import Member, RefreshToken, SmsCode, Staff, StaffStation
from forecourt.station.models import Station


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    """A dialect INSERT that supports ON CONFLICT DO NOTHING on both engines."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


# -- members -------------------------------------------------------------------------------


async def get_member(session: AsyncSession, member_id: int) -> Member | None:
    """A member by id."""
    return await session.get(Member, member_id)


async def member_by_phone_hash(session: AsyncSession, phone_hash: str) -> Member | None:
    """The member with this phone blind index."""
    return await session.scalar(select(Member).where(Member.phone_hash == phone_hash))


async def member_by_openid(session: AsyncSession, openid: str) -> Member | None:
    """The member with this WeChat openid."""
    return await session.scalar(select(Member).where(Member.openid == openid))


async def insert_member_if_absent(session: AsyncSession, **values: Any) -> bool:
    """Insert a member unless one with the same phone or openid exists; True when inserted."""
    stmt = _insert(session, Member).values(**values).on_conflict_do_nothing()
    inserted = await session.scalar(stmt.returning(Member.id))
    return inserted is not None


async def touch_member_login(
    session: AsyncSession, member: Member, *, at: datetime, unionid: str | None = None
) -> None:
    """Record a login (and a newly learned unionid)."""
    member.last_login_at = at
    if unionid and member.unionid != unionid:
        member.unionid = unionid
    await session.flush()


# -- SMS codes -----------------------------------------------------------------------------


async def add_sms_code(
    session: AsyncSession, *, phone_hash: str, code_hash: str, expires_at: datetime
) -> SmsCode:
    """Store a new code (hash only)."""
    row = SmsCode(phone_hash=phone_hash, code_hash=code_hash, expires_at=expires_at, attempts=0)
    session.add(row)
    await session.flush()
    return row


async def delete_sms_code(session: AsyncSession, code_id: int) -> None:
    """Remove a code that never reached the phone."""
    await session.execute(delete(SmsCode).where(SmsCode.id == code_id))


async def latest_sms_code(session: AsyncSession, *, phone_hash: str) -> SmsCode | None:
    """The newest code sent to this phone (only the newest one is accepted)."""
    stmt = (
        select(SmsCode).where(SmsCode.phone_hash == phone_hash).order_by(SmsCode.id.desc()).limit(1)
    )
    return await session.scalar(stmt)


async def claim_sms_attempt(
    session: AsyncSession, *, code_id: int, max_attempts: int, now: datetime
) -> int | None:
    """Count one guess atomically; the new attempt count, or None when no guess is left."""
    stmt = (
        update(SmsCode)
        .where(
            SmsCode.id == code_id,
            SmsCode.attempts < max_attempts,
            SmsCode.consumed_at.is_(None),
            SmsCode.expires_at > now,
        )
        .values(attempts=SmsCode.attempts + 1)
        .returning(SmsCode.attempts)
    )
    result: int | None = await session.scalar(stmt)
    return result


async def consume_sms_code(session: AsyncSession, *, code_id: int, now: datetime) -> bool:
    """Mark a code used; False when someone else used it first."""
    stmt = (
        update(SmsCode)
        .where(SmsCode.id == code_id, SmsCode.consumed_at.is_(None))
        .values(consumed_at=now)
        .returning(SmsCode.id)
    )
    return await session.scalar(stmt) is not None


# -- refresh tokens ------------------------------------------------------------------------


async def add_refresh_token(
    session: AsyncSession, *, token_id: str, family: str, subject: str, expires_at: datetime
) -> None:
    """Store a refresh token by id."""
    session.add(RefreshToken(id=token_id, family=family, subject=subject, expires_at=expires_at))
    await session.flush()


async def refresh_token_for_update(session: AsyncSession, token_id: str) -> RefreshToken | None:
    """A refresh token, row-locked on PostgreSQL."""
    stmt = select(RefreshToken).where(RefreshToken.id == token_id).with_for_update()
    return await session.scalar(stmt)


async def mark_refresh_used(session: AsyncSession, *, token_id: str, now: datetime) -> bool:
    """Mark a refresh token used; False when it already was."""
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .returning(RefreshToken.id)
    )
    return await session.scalar(stmt) is not None


async def revoke_family(session: AsyncSession, *, family: str, now: datetime) -> None:
    """Revoke every token of a family."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def revoke_subject(session: AsyncSession, *, subject: str, now: datetime) -> None:
    """Revoke every refresh token of one member or staff account."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.subject == subject, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


# -- staff ---------------------------------------------------------------------------------


async def get_staff(session: AsyncSession, staff_id: int) -> Staff | None:
    """A staff account by id."""
    return await session.get(Staff, staff_id)


async def staff_by_username(session: AsyncSession, username: str) -> Staff | None:
    """A staff account by (lower-case) username."""
    return await session.scalar(select(Staff).where(Staff.username == username))


async def insert_staff(session: AsyncSession, **values: Any) -> int | None:
    """Insert a staff account; its id, or None when the username is taken."""
    stmt = (
        _insert(session, Staff)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["username"])
        .returning(Staff.id)
    )
    staff_id: int | None = await session.scalar(stmt)
    return staff_id


async def station_ids_of(session: AsyncSession, staff_ids: Sequence[int]) -> dict[int, list[int]]:
    """Station ids (ascending) for each staff id."""
    out: dict[int, list[int]] = {i: [] for i in staff_ids}
    if not staff_ids:
        return out
    rows = await session.execute(
        select(StaffStation.staff_id, StaffStation.station_id)
        .where(StaffStation.staff_id.in_(staff_ids))
        .order_by(StaffStation.staff_id, StaffStation.station_id)
    )
    for staff_id, station_id in rows:
        out[staff_id].append(station_id)
    return out


async def set_station_ids(
    session: AsyncSession, *, staff_id: int, station_ids: Iterable[int]
) -> None:
    """Replace the stations a staff account works at."""
    await session.execute(delete(StaffStation).where(StaffStation.staff_id == staff_id))
    for station_id in sorted(set(station_ids)):
        session.add(StaffStation(staff_id=staff_id, station_id=station_id))
    await session.flush()


async def existing_station_ids(session: AsyncSession, station_ids: Iterable[int]) -> set[int]:
    """Which of these station ids exist."""
    wanted = set(station_ids)
    if not wanted:
        return set()
    rows = await session.scalars(select(Station.id).where(Station.id.in_(wanted)))
    return set(rows.all())


async def page_staff(
    session: AsyncSession,
    *,
    within_stations: frozenset[int] | None,
    role: str | None,
    station_id: int | None,
    active: bool | None,
    offset: int,
    limit: int,
) -> tuple[list[Staff], int]:
    """A page of staff (by id) and the total; `within_stations` limits to those stations."""
    conditions: list[Any] = []
    if within_stations is not None:
        conditions.append(
            Staff.id.in_(
                select(StaffStation.staff_id).where(StaffStation.station_id.in_(within_stations))
            )
        )
    if station_id is not None:
        conditions.append(
            Staff.id.in_(select(StaffStation.staff_id).where(StaffStation.station_id == station_id))
        )
    if role is not None:
        conditions.append(Staff.role == role)
    if active is not None:
        conditions.append(Staff.active == active)
    total = await session.scalar(select(func.count()).select_from(Staff).where(*conditions))
    rows = await session.scalars(
        select(Staff).where(*conditions).order_by(Staff.id).offset(offset).limit(limit)
    )
    return list(rows.all()), int(total or 0)


async def count_active_admins(session: AsyncSession, *, excluding: int | None = None) -> int:
    """Active hq_admin accounts (optionally not counting one)."""
    stmt = select(func.count()).select_from(Staff).where(Staff.role == "hq_admin", Staff.active)
    if excluding is not None:
        stmt = stmt.where(Staff.id != excluding)
    return int(await session.scalar(stmt) or 0)


async def masked_phones(session: AsyncSession, member_ids: set[int]) -> dict[int, str]:
    """Masked phone numbers (138****5678) of some members; the number itself never leaves."""
    if not member_ids:
        return {}
    stmt = select(Member.id, Member.phone_masked).where(
        Member.id.in_(member_ids), Member.phone_masked.is_not(None)
    )
    return {int(row[0]): str(row[1]) for row in (await session.execute(stmt)).all()}
