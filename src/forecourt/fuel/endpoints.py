"""Grade, cap and price routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from forecourt.backoffice import audit
from forecourt.deps import HqAdmin, Manager, Public, ReadSession, Session
from forecourt.fuel import service
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

router = APIRouter(tags=["fuel"])


def _price_details(price: PriceOut) -> dict[str, object]:
    """What the audit log keeps of a price change."""
    return {"grade": price.grade, "price_fen": price.price_fen, "effective_at": price.effective_at}


@router.get("/grades", response_model=list[GradeOut], dependencies=[Public])
async def list_grades(session: ReadSession, active_only: bool = True) -> list[GradeOut]:
    """Fuel grades in display order (anyone)."""
    return await service.list_grades(session, active_only=active_only)


@router.post("/admin/grades", response_model=GradeOut, status_code=status.HTTP_201_CREATED)
async def create_grade(session: Session, principal: HqAdmin, body: GradeIn) -> GradeOut:
    """Add a grade (head office)."""
    return await service.create_grade(session, data=body)


@router.patch("/admin/grades/{code}", response_model=GradeOut)
async def update_grade(
    session: Session, principal: HqAdmin, code: str, body: GradeUpdate
) -> GradeOut:
    """Change a grade (head office)."""
    return await service.update_grade(session, code=code, data=body)


@router.get("/price-caps", response_model=list[CapOut], dependencies=[Public])
async def list_caps(session: ReadSession, province: str | None = None) -> list[CapOut]:
    """Provincial maximum retail prices, newest first (public regulatory data)."""
    return await service.list_caps(session, province=province)


@router.post("/admin/price-caps", response_model=CapOut, status_code=status.HTTP_201_CREATED)
async def add_cap(session: Session, principal: HqAdmin, body: CapIn) -> CapOut:
    """Record a provincial cap (head office)."""
    return await service.add_cap(session, data=body)


@router.get("/stations/{station_id}/prices", response_model=StationPrices, dependencies=[Public])
async def station_prices(session: ReadSession, station_id: int) -> StationPrices:
    """A station's current and scheduled prices (anyone)."""
    return await service.station_prices(session, station_id=station_id)


@router.post(
    "/admin/stations/{station_id}/prices",
    response_model=PriceOut,
    status_code=status.HTTP_201_CREATED,
)
async def set_price(
    session: Session, principal: Manager, station_id: int, body: PriceIn
) -> PriceOut:
    """Set or schedule a list price; refused above the provincial cap (head office, manager)."""
    price = await service.set_price(session, principal=principal, station_id=station_id, data=body)
    audit.record(
        session,
        principal,
        "price.scheduled",
        subject_type="price",
        subject_id=price.id,
        station_id=station_id,
        details=_price_details(price),
    )
    return price


@router.delete("/admin/stations/{station_id}/prices/{price_id}", response_model=PriceOut)
async def cancel_price(
    session: Session, principal: Manager, station_id: int, price_id: int
) -> PriceOut:
    """Cancel a scheduled price before it takes effect (head office, manager)."""
    price = await service.cancel_price(
        session, principal=principal, station_id=station_id, price_id=price_id
    )
    audit.record(
        session,
        principal,
        "price.cancelled",
        subject_type="price",
        subject_id=price.id,
        station_id=station_id,
        details=_price_details(price),
    )
    return price


@router.get("/admin/stations/{station_id}/prices/history", response_model=list[PriceOut])
async def price_history(
    session: ReadSession,
    principal: Manager,
    station_id: int,
    grade: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[PriceOut]:
    """Every price change of a station, newest first (head office, manager)."""
    return await service.history(
        session, principal=principal, station_id=station_id, grade=grade, limit=limit
    )
