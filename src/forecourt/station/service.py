"""Station rules: create, change and read stations within the caller's scope."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import Conflict, FieldError, Forbidden, NotFound
from forecourt.fuel import repository as fuel_repo
from forecourt.kit import clock, geo
from forecourt.kit.money import yuan
from forecourt.kit.scope import require_station
from forecourt.station import repository
from forecourt.station.hours import is_open
from forecourt.station.models import Station
from forecourt.station.schemas import (
    Coord,
    GradePrice,
    StationCreate,
    StationOut,
    StationPage,
    StationUpdate,
)

# Fields a station manager may change at their own station; the rest is head office's.
MANAGER_FIELDS = frozenset({"phone", "hours", "services", "status"})


async def render(
    session: AsyncSession, stations: list[Station], *, coord: Coord
) -> list[StationOut]:
    """Stations with their current prices, coordinates in `coord`."""
    at = clock.now()
    prices = await fuel_repo.current_prices(session, station_ids=[s.id for s in stations], at=at)
    by_station: dict[int, list[GradePrice]] = {}
    for p in prices:
        by_station.setdefault(p.station_id, []).append(
            GradePrice(
                grade=p.grade_code,
                price_fen=p.price_fen,
                price_yuan=yuan(p.price_fen),
                effective_at=p.effective_at,
            )
        )
    out = []
    for s in stations:
        lat, lng = geo.convert(s.lat, s.lng, "wgs84", coord)
        out.append(
            StationOut(
                id=s.id,
                code=s.code,
                name=s.name,
                brand=s.brand,
                address=s.address,
                province=s.province,
                city=s.city,
                lat=round(lat, 7),
                lng=round(lng, 7),
                coord=coord,
                phone=s.phone,
                open_24h=s.open_24h,
                opens_at=s.opens_at,
                closes_at=s.closes_at,
                open_now=is_open(
                    status=s.status,
                    open_24h=s.open_24h,
                    opens_at=s.opens_at,
                    closes_at=s.closes_at,
                    at=at,
                ),
                services=list(s.services),
                status=s.status,
                prices=by_station.get(s.id, []),
                updated_at=s.updated_at,
            )
        )
    return out


async def get_public(session: AsyncSession, *, station_id: int, coord: Coord) -> StationOut:
    """One station as drivers see it."""
    station = await repository.get(session, station_id)
    if station is None:
        raise NotFound(f"station {station_id} not found")
    return (await render(session, [station], coord=coord))[0]


async def list_public(
    session: AsyncSession,
    *,
    city: str | None,
    brand: str | None,
    coord: Coord,
    offset: int,
    limit: int,
) -> StationPage:
    """Active stations, filtered by city and brand."""
    rows, total = await repository.page(
        session, ids=None, city=city, brand=brand, status="active", offset=offset, limit=limit
    )
    items = await render(session, rows, coord=coord)
    return StationPage(items=items, total=total, offset=offset, limit=limit)


async def list_for_staff(
    session: AsyncSession,
    *,
    principal: Principal,
    city: str | None,
    status: str | None,
    coord: Coord,
    offset: int,
    limit: int,
) -> StationPage:
    """Every station the caller may manage (all of them for head office)."""
    ids = None if principal.role == "hq_admin" else sorted(principal.station_ids)
    rows, total = await repository.page(
        session, ids=ids, city=city, brand=None, status=status, offset=offset, limit=limit
    )
    items = await render(session, rows, coord=coord)
    return StationPage(items=items, total=total, offset=offset, limit=limit)


async def create(session: AsyncSession, *, principal: Principal, data: StationCreate) -> Station:
    """Create a station (head office only; checked by the route)."""
    if await repository.by_code(session, data.code) is not None:
        raise Conflict(
            f"station code {data.code} is taken",
            errors=[FieldError("body.code", "already used by another station")],
        )
    lat, lng = geo.convert(data.lat, data.lng, data.coord, "wgs84")
    station = Station(
        code=data.code,
        name=data.name,
        brand=data.brand,
        address=data.address,
        province=data.province,
        city=data.city,
        lat=lat,
        lng=lng,
        phone=data.phone,
        open_24h=data.hours.open_24h,
        opens_at=None if data.hours.open_24h else data.hours.opens_at,
        closes_at=None if data.hours.open_24h else data.hours.closes_at,
        services=list(data.services),
        status=data.status,
    )
    try:
        return await repository.add(session, station)
    except IntegrityError as exc:
        raise Conflict(f"station code {data.code} is taken") from exc


async def update(
    session: AsyncSession, *, principal: Principal, station_id: int, data: StationUpdate
) -> Station:
    """Change a station within the caller's scope and role."""
    require_station(principal, station_id)
    station = await repository.get_for_update(session, station_id)
    if station is None:
        raise NotFound(f"station {station_id} not found")
    given = data.model_fields_set - {"coord"}
    if principal.role != "hq_admin":
        denied = sorted(given - MANAGER_FIELDS)
        if denied:
            raise Forbidden(
                "only head office may change these fields",
                errors=[FieldError(f"body.{f}", "head office only") for f in denied],
            )
    for name in ("name", "brand", "address", "province", "city", "phone", "status"):
        if name in given and getattr(data, name) is not None:
            setattr(station, name, getattr(data, name))
    if "phone" in given and data.phone is None:
        station.phone = None
    if data.lat is not None and data.lng is not None:
        station.lat, station.lng = geo.convert(data.lat, data.lng, data.coord, "wgs84")
    if data.hours is not None:
        station.open_24h = data.hours.open_24h
        station.opens_at = None if data.hours.open_24h else data.hours.opens_at
        station.closes_at = None if data.hours.open_24h else data.hours.closes_at
    if data.services is not None:
        station.services = list(data.services)
    station.updated_at = clock.now()
    await session.flush()
    return station


async def delete(session: AsyncSession, *, principal: Principal, station_id: int) -> None:
    """Delete a station (head office only; checked by the route)."""
    require_station(principal, station_id)
    station = await repository.get_for_update(session, station_id)
    if station is None:
        raise NotFound(f"station {station_id} not found")
    await repository.delete(session, station)


async def get_for_staff(
    session: AsyncSession, *, principal: Principal, station_id: int, coord: Coord
) -> StationOut:
    """One station within the caller's scope."""
    require_station(principal, station_id)
    return await get_public(session, station_id=station_id, coord=coord)
