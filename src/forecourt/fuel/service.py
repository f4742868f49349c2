"""Fuel rules: grades, provincial caps, and list prices that never exceed the cap."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import Conflict, FieldError, NotFound, Unprocessable
from forecourt.fuel import repository
from forecourt.fuel.models import Grade, PriceCap, StationPrice
from forecourt.fuel.schemas import (
    CapIn,
    CapOut,
    GradeIn,
    GradeOut,
    GradeUpdate,
    PriceIn,
    PriceOut,
    StationPrices,
)
from forecourt.kit import clock
from forecourt.kit.money import yuan
from forecourt.kit.scope import require_station
from forecourt.station import repository as station_repo

PAST_TOLERANCE = timedelta(seconds=60)


class PriceAboveCap(Unprocessable):
    """The price is above the provincial cap in force at its effective time."""

    code, title = "price_above_cap", "Price above the regulated cap"


class PriceCapMissing(Unprocessable):
    """No cap is configured for the province and grade, so the price cannot be checked."""

    code, title = "price_cap_missing", "No regulated cap configured"


class PriceAlreadyEffective(Conflict):
    """Only prices that have not yet taken effect can be cancelled."""

    code, title = "price_already_effective", "Price already in effect"


class UnknownGrade(Unprocessable):
    """The grade does not exist or is inactive."""

    code, title = "unknown_grade", "Unknown fuel grade"


def _cap_out(cap: PriceCap) -> CapOut:
    return CapOut(
        id=cap.id,
        province=cap.province,
        grade=cap.grade_code,
        cap_fen=cap.cap_fen,
        cap_yuan=yuan(cap.cap_fen),
        effective_at=cap.effective_at,
    )


def price_out(row: StationPrice, *, state: str) -> PriceOut:
    """A price row for clients."""
    return PriceOut(
        id=row.id,
        station_id=row.station_id,
        grade=row.grade_code,
        price_fen=row.price_fen,
        price_yuan=yuan(row.price_fen),
        effective_at=row.effective_at,
        created_at=row.created_at,
        created_by=row.created_by,
        cancelled_at=row.cancelled_at,
        state=state,
    )


async def list_grades(session: AsyncSession, *, active_only: bool) -> list[GradeOut]:
    """Grades in display order."""
    rows = await repository.list_grades(session, active_only=active_only)
    return [GradeOut.model_validate(g) for g in rows]


async def create_grade(session: AsyncSession, *, data: GradeIn) -> GradeOut:
    """Add a grade (head office)."""
    if await repository.get_grade(session, data.code) is not None:
        raise Conflict(
            f"grade {data.code} exists", errors=[FieldError("body.code", "already exists")]
        )
    grade = Grade(**data.model_dump())
    await repository.add(session, grade)
    return GradeOut.model_validate(grade)


async def update_grade(session: AsyncSession, *, code: str, data: GradeUpdate) -> GradeOut:
    """Rename, reorder or (de)activate a grade (head office)."""
    grade = await repository.get_grade(session, code)
    if grade is None:
        raise NotFound(f"grade {code} not found")
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(grade, name, value)
    await session.flush()
    return GradeOut.model_validate(grade)


async def _require_grade(session: AsyncSession, code: str) -> Grade:
    grade = await repository.get_grade(session, code)
    if grade is None or not grade.active:
        raise UnknownGrade(
            f"grade {code} is not configured", errors=[FieldError("body.grade", "unknown grade")]
        )
    return grade


async def add_cap(session: AsyncSession, *, data: CapIn) -> CapOut:
    """Record a provincial cap (head office)."""
    await _require_grade(session, data.grade)
    cap = PriceCap(
        province=data.province,
        grade_code=data.grade,
        cap_fen=data.cap_fen,
        effective_at=data.effective_at or clock.now(),
    )
    await repository.add(session, cap)
    return _cap_out(cap)


async def list_caps(session: AsyncSession, *, province: str | None) -> list[CapOut]:
    """Caps, newest first."""
    return [_cap_out(c) for c in await repository.caps(session, province=province)]


def _effective_moment(data: PriceIn, now: datetime) -> datetime:
    if data.at_midnight:
        return clock.next_local_midnight(now)
    if data.effective_at is None:
        return now
    if data.effective_at < now - PAST_TOLERANCE:
        raise Unprocessable(
            "effective_at is in the past",
            errors=[FieldError("body.effective_at", "must not be in the past")],
        )
    return max(data.effective_at, now)


async def set_price(
    session: AsyncSession, *, principal: Principal, station_id: int, data: PriceIn
) -> PriceOut:
    """Schedule a list price for a station, refused when above the cap in force at that time."""
    require_station(principal, station_id)
    station = await station_repo.get_for_update(session, station_id)
    if station is None:
        raise NotFound(f"station {station_id} not found")
    await _require_grade(session, data.grade)
    now = clock.now()
    effective_at = _effective_moment(data, now)
    cap = await repository.cap_at(
        session, province=station.province, grade=data.grade, at=effective_at
    )
    if cap is None:
        raise PriceCapMissing(
            f"no cap for {data.grade} in {station.province}",
            errors=[FieldError("body.grade", f"no regulated cap in {station.province}")],
        )
    if data.price_fen > cap.cap_fen:
        reason = (
            f"{yuan(data.price_fen)} is above the {station.province} cap of {yuan(cap.cap_fen)}"
        )
        raise PriceAboveCap(
            f"{reason} yuan/L for {data.grade}", errors=[FieldError("body.price_fen", reason)]
        )
    row = StationPrice(
        station_id=station_id,
        grade_code=data.grade,
        price_fen=data.price_fen,
        effective_at=effective_at,
        created_by=principal.id,
    )
    await repository.add(session, row)
    return price_out(row, state="current" if effective_at <= now else "scheduled")


async def cancel_price(
    session: AsyncSession, *, principal: Principal, station_id: int, price_id: int
) -> PriceOut:
    """Cancel a scheduled price before it takes effect."""
    require_station(principal, station_id)
    row = await repository.price_for_update(session, station_id=station_id, price_id=price_id)
    if row is None:
        raise NotFound(f"price {price_id} not found")
    now = clock.now()
    if row.cancelled_at is not None:
        return price_out(row, state="cancelled")
    if row.effective_at <= now:
        raise PriceAlreadyEffective(f"price {price_id} took effect at {row.effective_at}")
    row.cancelled_at = now
    await session.flush()
    return price_out(row, state="cancelled")


async def station_prices(session: AsyncSession, *, station_id: int) -> StationPrices:
    """Current and scheduled prices of a station (public)."""
    if await station_repo.get(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")
    now = clock.now()
    current = await repository.current_prices(session, station_ids=[station_id], at=now)
    upcoming = await repository.scheduled(session, station_id=station_id, after=now)
    return StationPrices(
        station_id=station_id,
        current=[price_out(p, state="current") for p in current],
        scheduled=[price_out(p, state="scheduled") for p in upcoming],
    )


async def history(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    grade: str | None,
    limit: int,
) -> list[PriceOut]:
    """Every price row of a station within the caller's scope, newest first."""
    require_station(principal, station_id)
    if await station_repo.get(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")
    now = clock.now()
    rows = await repository.price_history(session, station_id=station_id, grade=grade, limit=limit)
    current_ids = {
        p.id for p in await repository.current_prices(session, station_ids=[station_id], at=now)
    }
    out = []
    for row in rows:
        if row.cancelled_at is not None:
            state = "cancelled"
        elif row.id in current_ids:
            state = "current"
        elif row.effective_at > now:
            state = "scheduled"
        else:
            state = "superseded"
        out.append(price_out(row, state=state))
    return out
