"""HTTP routes of orders: drivers create, read and cancel theirs; staff see their stations'."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, status

from forecourt.deps import AnyStaff, Member, ReadSession, RuntimeDep, Session
from forecourt.kit import clock
from forecourt.order import service
from forecourt.order.schemas import OrderIn, OrderList, OrderOut, StaffOrderOut
from forecourt.payment import idempotency
from forecourt.payment import service as payments

router = APIRouter(tags=["orders"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
DeviceId = Annotated[str | None, Header(alias="X-Device-Id", max_length=64)]


@router.post("/orders", response_model=OrderOut, status_code=status.HTTP_201_CREATED)
async def create_order(
    session: Session,
    runtime: RuntimeDep,
    principal: Member,
    body: OrderIn,
    idempotency_key: IdempotencyKey = None,
    device: DeviceId = None,
) -> OrderOut:
    """Create a post-pay order (locks the nozzle's sale) or a pay-at-pump order (preset)."""

    async def work() -> OrderOut:
        order = await service.create_fuel_order(
            session,
            principal=principal,
            data=body,
            settings=runtime.settings,
            serial_key=runtime.serial_key,
            device=device or f"member:{principal.id}",
            now=clock.now(),
        )
        return service.out(order)

    return await idempotency.run(
        session,
        subject=principal.subject,
        route="orders.create",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=OrderOut,
        work=work,
    )


@router.get("/orders", response_model=OrderList)
async def my_orders(
    session: ReadSession,
    principal: Member,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrderList:
    """The caller's orders, newest first (page with `before` = the last `created_at`)."""
    return await service.list_for_member(session, principal=principal, before=before, limit=limit)


@router.get("/orders/{order_id}", response_model=OrderOut)
async def my_order(session: ReadSession, principal: Member, order_id: str) -> OrderOut:
    """One of the caller's orders."""
    return service.out(await service.member_order(session, principal=principal, order_id=order_id))


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(
    session: Session, runtime: RuntimeDep, principal: Member, order_id: str
) -> OrderOut:
    """Give up an unpaid order: open payments are closed and the pump sale released."""
    order = await payments.cancel_order(
        session,
        principal=principal,
        order_id=order_id,
        gateways=runtime.gateways,
        settings=runtime.settings,
        now=clock.now(),
    )
    return service.out(order)


@router.get("/admin/stations/{station_id}/orders", response_model=list[StaffOrderOut])
async def station_orders(
    session: ReadSession,
    runtime: RuntimeDep,
    principal: AnyStaff,
    station_id: int,
    order_status: Annotated[str | None, Query(alias="status", max_length=12)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[StaffOrderOut]:
    """A station's orders with the payer's masked phone (the attendant's view)."""
    return await service.station_orders(
        session,
        principal=principal,
        station_id=station_id,
        status=order_status,
        limit=limit,
    )


@router.get("/admin/orders/{order_id}", response_model=StaffOrderOut)
async def staff_order(session: ReadSession, principal: AnyStaff, order_id: str) -> StaffOrderOut:
    """One order of a station in the caller's scope."""
    order = await service.staff_order(session, principal=principal, order_id=order_id)
    return (await service.staff_views(session, [order]))[0]
