"""HTTP routes of payments: pay an order, provider callbacks, refunds, reconciliation."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import RedirectResponse

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
from forecourt.kit import clock, serials
from forecourt.order import service as orders
from forecourt.payment import callbacks, idempotency, reconcile, refunds, repository, service
from forecourt.payment.schemas import (
    PaymentIn,
    PaymentOut,
    ReconcileIn,
    ReconciliationOut,
    RefundDecision,
    RefundIn,
    RefundOut,
)

router = APIRouter(tags=["payments"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
DeviceId = Annotated[str | None, Header(alias="X-Device-Id", max_length=64)]


@router.post("/orders/{order_id}/payments", response_model=PaymentOut, status_code=201)
async def pay_order(
    session: Session,
    runtime: RuntimeDep,
    principal: Member,
    order_id: str,
    body: PaymentIn,
    request: Request,
    idempotency_key: IdempotencyKey = None,
    device: DeviceId = None,
) -> PaymentOut:
    """Pay the caller's order: the wallet pays at once; other providers return client params."""

    async def work() -> PaymentOut:
        return await service.start_payment(
            session,
            principal=principal,
            order_id=order_id,
            provider=body.provider,
            gateways=runtime.gateways,
            settings=runtime.settings,
            serial_key=runtime.serial_key,
            device=device or f"member:{principal.id}",
            now=clock.now(),
            channel=body.channel,
            client_ip=request.client.host if request.client else None,
        )

    return await idempotency.run(
        session,
        subject=principal.subject,
        route=f"orders.pay:{order_id}",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=PaymentOut,
        work=work,
    )


@router.get("/orders/{order_id}/payments", response_model=list[PaymentOut])
async def order_payments(
    session: ReadSession, principal: Member, order_id: str
) -> list[PaymentOut]:
    """The payments of one of the caller's orders."""
    order = await orders.member_order(session, principal=principal, order_id=order_id)
    return [service.out(p) for p in await repository.payments_of(session, order.id)]


@router.post("/payments/notify/{provider}", dependencies=[Public], include_in_schema=True)
async def provider_notification(
    session: Session, runtime: RuntimeDep, provider: str, request: Request
) -> Response:
    """Provider callback (authenticated by the provider's signature, not a token)."""
    ack = await callbacks.handle_notification(
        session,
        provider_name=provider,
        headers=dict(request.headers),
        body=await request.body(),
        gateways=runtime.gateways,
        settings=runtime.settings,
        now=clock.now(),
    )
    return Response(content=ack.body, status_code=ack.status, media_type=ack.media_type)


async def _return_target(provider: str, request: Request) -> RedirectResponse:
    fields = dict(request.query_params)
    if request.method == "POST":
        fields |= {k: str(v) for k, v in (await request.form()).items()}
    number = fields.get("out_trade_no") or fields.get("orderId") or ""
    target = "/app/#/pages/result/result"
    if serials.verify_shape(number):
        target += f"?payment={number}&provider={quote(provider)}"
    return RedirectResponse(target, status_code=303)


@router.get(
    "/payments/return/{provider}",
    dependencies=[Public],
    response_class=RedirectResponse,
    status_code=303,
)
async def browser_return(provider: str, request: Request) -> RedirectResponse:
    """Where the browser lands after an H5 payment page; on to the app's result page.

    The return is only a hint (the notification or a query decides); it carries the merchant
    order number, checked for shape, so nothing else can be redirected to.
    """
    return await _return_target(provider, request)


@router.post(
    "/payments/return/{provider}",
    dependencies=[Public],
    response_class=RedirectResponse,
    status_code=303,
)
async def browser_return_form(provider: str, request: Request) -> RedirectResponse:
    """The same, for providers that post the browser back with a form (UnionPay)."""
    return await _return_target(provider, request)


def _refund_out(refund: object) -> RefundOut:
    return RefundOut.model_validate(refund, from_attributes=True)


@router.post("/admin/orders/{order_id}/refunds", response_model=RefundOut, status_code=201)
async def refund_order(
    session: Session,
    runtime: RuntimeDep,
    principal: AnyStaff,
    order_id: str,
    body: RefundIn,
    idempotency_key: IdempotencyKey = None,
) -> RefundOut:
    """Refund part or all of an order (above the threshold it waits for a manager)."""

    async def work() -> RefundOut:
        refund = await refunds.request_refund(
            session,
            principal=principal,
            order_id=order_id,
            amount_fen=body.amount_fen,
            reason=body.reason,
            gateways=runtime.gateways,
            settings=runtime.settings,
            now=clock.now(),
        )
        return _refund_out(refund)

    return await idempotency.run(
        session,
        subject=principal.subject,
        route=f"orders.refund:{order_id}",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=RefundOut,
        work=work,
    )


@router.get("/admin/orders/{order_id}/refunds", response_model=list[RefundOut])
async def order_refunds(
    session: ReadSession, principal: AnyStaff, order_id: str
) -> list[RefundOut]:
    """The refunds of an order in the caller's scope."""
    rows = await refunds.refunds_for_staff(session, principal=principal, order_id=order_id)
    return [_refund_out(row) for row in rows]


@router.post("/admin/refunds/{refund_id}/decision", response_model=RefundOut)
async def decide_refund(
    session: Session, runtime: RuntimeDep, principal: Manager, refund_id: str, body: RefundDecision
) -> RefundOut:
    """Approve or reject a refund that waits for approval (not by its requester)."""
    refund = await refunds.decide_refund(
        session,
        principal=principal,
        refund_id=refund_id,
        approve=body.approve,
        gateways=runtime.gateways,
        now=clock.now(),
    )
    return _refund_out(refund)


@router.post(
    "/admin/reconciliations", response_model=ReconciliationOut, status_code=status.HTTP_200_OK
)
async def run_reconciliation(
    session: Session, runtime: RuntimeDep, principal: HqAdmin, body: ReconcileIn
) -> ReconciliationOut:
    """Download a provider's statement for a day and match it against our records."""
    return await reconcile.run(
        session, provider=body.provider, bill_date=body.bill_date, gateways=runtime.gateways
    )


@router.get("/admin/reconciliations", response_model=list[ReconciliationOut])
async def list_reconciliations(
    session: ReadSession,
    principal: HqAdmin,
    provider: str | None = None,
    since: date | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
) -> list[ReconciliationOut]:
    """Stored reconciliations, newest day first."""
    return await reconcile.stored(session, provider=provider, since=since, limit=limit)
