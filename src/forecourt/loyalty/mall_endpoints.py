"""HTTP routes of the points mall: catalogue, redeem, cancel; pick-up at the station."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, status

from forecourt.deps import (
    AnyStaff,
    HqAdmin,
    Manager,
    Member,
    Public,
    ReadSession,
    RuntimeDep,
    Session,
)
from forecourt.kit import clock
from forecourt.kit.scope import require_station
from forecourt.loyalty import mall, mall_repository, views
from forecourt.loyalty.schemas import (
    CancelIn,
    MallItemOut,
    MallItemPatch,
    PickupIn,
    RedeemIn,
    RedemptionOut,
    StaffRedemptionOut,
)
from forecourt.payment import idempotency

router = APIRouter(prefix="/mall", tags=["mall"])
admin = APIRouter(tags=["mall admin"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


@router.get("/items", response_model=list[MallItemOut], dependencies=[Public])
async def items(session: ReadSession) -> list[MallItemOut]:
    """The catalogue: what points buy, with stock."""
    return [views.item_out(item) for item in await mall.catalogue(session)]


@router.get("/items/{item_id}", response_model=MallItemOut, dependencies=[Public])
async def item(session: ReadSession, item_id: int) -> MallItemOut:
    """One catalogue item."""
    return views.item_out(await mall.active_item(session, item_id))


@router.post("/redemptions", response_model=RedemptionOut, status_code=status.HTTP_201_CREATED)
async def redeem(
    session: Session,
    runtime: RuntimeDep,
    principal: Member,
    body: RedeemIn,
    idempotency_key: IdempotencyKey = None,
) -> RedemptionOut:
    """Spend points on an item to pick up at a station (409: points, stock or limit)."""

    async def work() -> RedemptionOut:
        row = await mall.redeem(
            session,
            member_id=principal.id,
            item_id=body.item_id,
            quantity=body.quantity,
            station_id=body.station_id,
            pickup_days=runtime.settings.loyalty_pickup_days,
            now=clock.now(),
        )
        return views.redemption_out(row, with_code=True)

    return await idempotency.run(
        session,
        subject=principal.subject,
        route="mall.redeem",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=RedemptionOut,
        work=work,
    )


@router.get("/redemptions", response_model=list[RedemptionOut])
async def my_redemptions(
    session: ReadSession,
    principal: Member,
    before_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[RedemptionOut]:
    """The caller's redemptions, newest first, with their pick-up codes."""
    rows = await mall_repository.of_member(
        session, member_id=principal.id, before_id=before_id, limit=limit
    )
    return [views.redemption_out(r, with_code=True) for r in rows]


@router.get("/redemptions/{redemption_id}", response_model=RedemptionOut)
async def my_redemption(
    session: ReadSession, principal: Member, redemption_id: int
) -> RedemptionOut:
    """One of the caller's redemptions."""
    row = await mall.member_redemption(session, member_id=principal.id, redemption_id=redemption_id)
    return views.redemption_out(row, with_code=True)


@router.post("/redemptions/{redemption_id}/cancel", response_model=RedemptionOut)
async def cancel_mine(session: Session, principal: Member, redemption_id: int) -> RedemptionOut:
    """Cancel an uncollected redemption: points and stock come back."""
    row = await mall.member_redemption(session, member_id=principal.id, redemption_id=redemption_id)
    row = await mall.cancel(
        session, redemption=row, actor=principal.subject, reason="会员取消", now=clock.now()
    )
    return views.redemption_out(row, with_code=True)


# -- station and head office ---------------------------------------------------------------


@admin.get("/admin/stations/{station_id}/redemptions", response_model=list[StaffRedemptionOut])
async def station_redemptions(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int,
    redemption_status: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[StaffRedemptionOut]:
    """Redemptions to hand over at a station of the caller (never the codes)."""
    require_station(principal, station_id)
    rows = await mall_repository.of_station(
        session, station_id=station_id, status=redemption_status, limit=limit
    )
    return await views.staff_redemptions(session, rows)


@admin.post("/admin/mall/pickups", response_model=StaffRedemptionOut)
async def pick_up(session: Session, principal: AnyStaff, body: PickupIn) -> StaffRedemptionOut:
    """The attendant confirms the hand-over against the member's code."""
    row = await mall.pick_up(
        session, principal=principal, station_id=body.station_id, code=body.code, now=clock.now()
    )
    return (await views.staff_redemptions(session, [row]))[0]


@admin.post("/admin/mall/redemptions/{redemption_id}/cancel", response_model=StaffRedemptionOut)
async def cancel_at_station(
    session: Session, principal: Manager, redemption_id: int, body: CancelIn
) -> StaffRedemptionOut:
    """A manager cancels an uncollected redemption of their station (points and stock back)."""
    row = await mall.staff_redemption(session, principal=principal, redemption_id=redemption_id)
    row = await mall.cancel(
        session, redemption=row, actor=principal.subject, reason=body.reason, now=clock.now()
    )
    return (await views.staff_redemptions(session, [row]))[0]


@admin.get("/admin/mall/items", response_model=list[MallItemOut])
async def all_items(session: ReadSession, principal: HqAdmin) -> list[MallItemOut]:
    """Every item, hidden ones included."""
    return [views.item_out(i) for i in await mall_repository.items(session, active_only=False)]


@admin.patch("/admin/mall/items/{item_id}", response_model=MallItemOut)
async def patch_item(
    session: Session, principal: HqAdmin, item_id: int, body: MallItemPatch
) -> MallItemOut:
    """Change an item's stock, points, monthly limit or visibility."""
    row = await mall.update_item(
        session, item_id=item_id, changes=body.model_dump(exclude_none=True), now=clock.now()
    )
    return views.item_out(row)
