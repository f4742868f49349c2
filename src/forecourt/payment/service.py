"""Payments: start one, post it exactly once, react to callbacks, queries and expiry.

Posting a payment is the conditional update pending|closed -> paid on its row: whichever of
the notification, a duplicate of it or the active query gets there first posts it, the others
see the row already paid and do nothing. The order is then moved under its row lock; a
payment that arrives for an order no longer waiting (cancelled, expired, paid otherwise) is
refunded in full at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.auth.tokens import Principal
from forecourt.config import Settings
from forecourt.errors import FieldError
from forecourt.kit import serials
from forecourt.order import domain as order_domain
from forecourt.order import repository as order_repository
from forecourt.order import service as orders
from forecourt.order.domain import Kind, Status
from forecourt.order.errors import OrderAlreadyPaid, OrderExpired, OrderNotPayable
from forecourt.order.models import Order
from forecourt.order.repository import OrderRow
from forecourt.payment import refunds, repository
from forecourt.payment.errors import PayerUnknown, ProviderRejected, ProviderUnavailable
from forecourt.payment.gateways import Gateways
from forecourt.payment.models import Payment
from forecourt.payment.providers import (
    PrepayRequest,
    ProviderError,
    ProviderName,
)
from forecourt.payment.repository import PaidPayment
from forecourt.payment.schemas import PaymentOut
from forecourt.pump import service as pumps
from forecourt.pump.commands import NozzleNotFound, PumpBusy, PumpOffline, PumpUnavailable
from forecourt.pump.domain import Preset, PumpError
from forecourt.wallet import service as wallet

log = logging.getLogger("forecourt.payment")

ORDER_PAID = "order.paid"  # outbox: {order_id, member_id, station_id, kind, amount_fen, ...}
ORDER_CLOSED = "order.closed"  # outbox: cancelled or expired before payment
AUTHORISE_REFUSED = (PumpError, PumpOffline, PumpBusy, PumpUnavailable, NozzleNotFound)
Refusal = PumpError | PumpOffline | PumpBusy | PumpUnavailable | NozzleNotFound


def out(payment: Payment) -> PaymentOut:
    """The client's view of a payment."""
    return PaymentOut(
        id=payment.id,
        order_id=payment.order_id,
        provider=payment.provider,
        status=payment.status,
        amount_fen=payment.amount_fen,
        refunded_fen=payment.refunded_fen,
        client_params={str(k): str(v) for k, v in (payment.client_params or {}).items()},
        created_at=payment.created_at,
        expires_at=payment.expires_at,
        paid_at=payment.paid_at,
    )


def notify_url(settings: Settings, provider: str) -> str:
    """Where a provider sends its callbacks."""
    base = (settings.payment_notify_base_url or settings.public_url).rstrip("/")
    return f"{base}/api/v1/payments/notify/{provider}"


# -- starting a payment --------------------------------------------------------------------


async def start_payment(
    session: AsyncSession,
    *,
    principal: Principal,
    order_id: str,
    provider: str,
    gateways: Gateways,
    settings: Settings,
    serial_key: bytes,
    device: str,
    now: datetime,
    channel: str = "miniprogram",
    client_ip: str | None = None,
) -> PaymentOut:
    """Open (or return the open) payment of the caller's order through `provider`."""
    external = None if provider == ProviderName.WALLET.value else gateways.get(provider)
    order = await orders.locked_member_row(session, principal=principal, order_id=order_id)
    await _require_payable(session, order, gateways=gateways, settings=settings, now=now)
    for existing in await repository.payments_of(session, order.id):
        if existing.status == "paid":
            raise OrderAlreadyPaid(f"order {order.id} is paid")
        if existing.status != "pending":
            continue
        if _reusable(
            existing, provider=provider, amount=order.payable_fen, channel=channel, now=now
        ):
            return out(existing)
        await close_at_provider(session, existing, gateways=gateways, settings=settings, now=now)
        if existing.status == "paid":
            raise OrderAlreadyPaid(f"order {order.id} is paid")
    if order.kind == Kind.POSTPAY.value:
        await _keep_sale_locked(session, order, settings=settings, now=now)
    payment = Payment(
        id=serials.new_serial(serial_key, device=device, now=now),
        order_id=order.id,
        member_id=order.member_id,
        provider=provider,
        status="pending",
        amount_fen=order.payable_fen,
        refunded_fen=0,
        client_params={},
        created_at=now,
        expires_at=order.expires_at,
    )
    if external is None:
        await repository.add_payment(session, payment)
        await wallet.pay(
            session, member_id=order.member_id, payment_id=payment.id, amount_fen=payment.amount_fen
        )
        await post_payment(
            session,
            payment_id=payment.id,
            transaction_id=payment.id,
            amount_fen=payment.amount_fen,
            paid_at=now,
            gateways=gateways,
            settings=settings,
            now=now,
        )
        paid = await repository.reload_payment(session, payment.id)
        assert paid is not None
        return out(paid)
    payer_id = None  # H5: a page or form the browser opens
    if channel == "miniprogram" and provider == ProviderName.WECHATPAY.value:
        payer_id = await repository.payer_openid(session, order.member_id)
        if payer_id is None:
            raise PayerUnknown(
                "log in with WeChat in the mini-program, or pay with channel h5",
                errors=[FieldError("channel", "no WeChat openid for this account")],
            )
    try:
        result = await external.prepay(
            PrepayRequest(
                out_trade_no=payment.id,
                amount_fen=payment.amount_fen,
                description=_description(order),
                notify_url=notify_url(settings, provider),
                expires_at=payment.expires_at,
                payer_id=payer_id,
                requested_at=payment.created_at,
                client_ip=client_ip,
            )
        )
    except ProviderError as exc:
        if exc.retryable:
            raise ProviderUnavailable(f"{provider}: {exc.message}") from exc
        raise ProviderRejected(f"{provider}: {exc.code}: {exc.message}") from exc
    payment.prepay_ref = result.provider_ref
    payment.client_params = dict(result.client_params)
    await repository.add_payment(session, payment)  # one insert, in the same unit of work
    return out(payment)


H5_LINK_REUSE = timedelta(minutes=4)  # WeChat's h5_url lives 5 minutes
H5_KEYS = frozenset({"h5_url", "pay_url", "form_action"})


def _reusable(payment: Payment, *, provider: str, amount: int, channel: str, now: datetime) -> bool:
    """Hand back an open payment (a double tap) when nothing about it changed or went stale."""
    if payment.provider != provider or payment.amount_fen != amount:
        return False
    is_h5 = bool(H5_KEYS & set(payment.client_params or {}))
    if is_h5 != (channel == "h5"):
        return False
    return not is_h5 or now - payment.created_at < H5_LINK_REUSE


def _description(order: OrderRow) -> str:
    if order.kind == Kind.TOPUP.value:
        return "Forecourt 钱包充值"
    return f"Forecourt 加油 {order.nozzle_number}号枪 {order.grade_code}"


async def _require_payable(
    session: AsyncSession, order: OrderRow, *, gateways: Gateways, settings: Settings, now: datetime
) -> None:
    """409 unless the order waits for payment (expiring it when its time is up)."""
    status = Status(order.status)
    if status is Status.PENDING and order.expires_at <= now:
        await close_order(
            session, order, status=Status.EXPIRED, gateways=gateways, settings=settings, now=now
        )
        raise OrderExpired(f"order {order.id} expired")
    if status is Status.EXPIRED:
        raise OrderExpired(f"order {order.id} expired")
    if status is Status.CANCELLED:
        raise OrderNotPayable(f"order {order.id} was cancelled")
    if status is not Status.PENDING:
        raise OrderAlreadyPaid(f"order {order.id} is {status.value}")


async def _keep_sale_locked(
    session: AsyncSession, order: OrderRow, *, settings: Settings, now: datetime
) -> None:
    """Re-take the post-pay sale lock for the payment's lifetime (409 when lost)."""
    assert order.station_id is not None
    assert order.fp_number is not None
    assert order.sale_seq is not None
    await pumps.lock_sale(
        session,
        station_id=order.station_id,
        fp_number=order.fp_number,
        seq=order.sale_seq,
        order_id=order.id,
        ttl_seconds=max(1, int((order.expires_at - now).total_seconds())),
        now=now,
    )


async def close_at_provider(
    session: AsyncSession,
    payment: Payment,
    *,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> None:
    """Close an open external payment; if the provider says it was paid, post it instead."""
    provider = gateways.get(payment.provider)
    try:
        status = await provider.query(payment.id, requested_at=payment.created_at)
    except ProviderError as exc:
        if exc.code not in ("ORDER_NOT_EXIST", "ACQ.TRADE_NOT_EXIST", "34"):
            raise ProviderUnavailable(f"{payment.provider}: {exc.message}") from exc
        status = None
    if status is not None and status.state == "paid" and status.transaction_id:
        await post_payment(
            session,
            payment_id=payment.id,
            transaction_id=status.transaction_id,
            amount_fen=status.amount_fen or payment.amount_fen,
            paid_at=status.paid_at or now,
            gateways=gateways,
            settings=settings,
            now=now,
        )
        await session.refresh(payment)
        return
    if status is not None:
        try:
            await provider.close(payment.id)
        except ProviderError as exc:
            raise ProviderUnavailable(f"{payment.provider}: {exc.message}") from exc
    await repository.mark_closed(session, payment_id=payment.id, now=now)
    await session.refresh(payment)


# -- posting -------------------------------------------------------------------------------


async def post_payment(
    session: AsyncSession,
    *,
    payment_id: str,
    transaction_id: str,
    amount_fen: int,
    paid_at: datetime,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
    provider: str | None = None,
) -> bool:
    """Record a confirmed payment once and fulfil its order; True for the posting call.

    Nothing is posted unless the amount (and `provider`, when given) match the payment.
    """
    payment = await repository.mark_paid(
        session,
        payment_id=payment_id,
        transaction_id=transaction_id,
        paid_at=paid_at,
        amount_fen=amount_fen,
        provider=provider,
    )
    if payment is None:
        return False
    order = await order_repository.locked(session, payment.order_id)
    assert order is not None
    if order.status != Status.PENDING.value or order.paid_fen > 0:
        await refunds.start_refund(
            session,
            order=order,
            payment=payment,
            amount_fen=payment.amount_fen,
            reason="订单已关闭或已支付，自动退款",
            kind="late_payment",
            requested_by="system",
            gateways=gateways,
            now=now,
        )
        return True
    # The pump is asked first so that the order row is written once, already moved on.
    refused = await _authorise(session, order, settings=settings, now=now)
    await _fulfil(
        session,
        order,
        payment,
        paid_at=paid_at,
        refused=refused,
        gateways=gateways,
        settings=settings,
        now=now,
    )
    outbox.publish(
        session,
        ORDER_PAID,
        {
            "order_id": order.id,
            "payment_id": payment.id,
            "member_id": order.member_id,
            "station_id": order.station_id,
            "kind": order.kind,
            "nozzle": order.nozzle_number,
            "provider": payment.provider,
            "amount_fen": payment.amount_fen,
        },
    )
    return True


async def _authorise(
    session: AsyncSession, order: OrderRow, *, settings: Settings, now: datetime
) -> Refusal | None:
    """Authorise a pay-at-pump order's nozzle for its preset; the pump's refusal, if any."""
    if order.kind != Kind.PREPAY.value:
        return None
    assert order.station_id is not None
    assert order.nozzle_number is not None
    assert order.preset_fen is not None
    try:
        await pumps.authorise(
            session,
            station_id=order.station_id,
            nozzle_number=order.nozzle_number,
            preset=Preset.amount(order.preset_fen),
            order_id=order.id,
            ttl_seconds=settings.pump_authorise_ttl_seconds,
            now=now,
        )
    except AUTHORISE_REFUSED as exc:
        return exc
    return None


async def _fulfil(
    session: AsyncSession,
    order: OrderRow,
    payment: PaidPayment,
    *,
    paid_at: datetime,
    refused: Refusal | None,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> None:
    """What a paid order does (credit the wallet, clear the sale, fuel); its row written once."""
    status = order_domain.move(Status(order.status), Status.PAID)
    settled_fen, completed_at = order.settled_fen, order.completed_at
    if order.kind == Kind.TOPUP.value:
        await wallet.credit_topup(
            session,
            member_id=order.member_id,
            order_id=order.id,
            principal_fen=payment.amount_fen,
            bonus_fen=order.bonus_fen,
        )
        status, completed_at = order_domain.move(status, Status.COMPLETED), now
    elif order.kind == Kind.POSTPAY.value:
        assert order.station_id is not None
        assert order.fp_number is not None
        assert order.sale_seq is not None
        await pumps.clear_sale(
            session,
            station_id=order.station_id,
            fp_number=order.fp_number,
            seq=order.sale_seq,
            order_id=order.id,
            now=now,
        )
        settled_fen = payment.amount_fen
        status, completed_at = order_domain.move(status, Status.COMPLETED), now
    elif refused is None:
        status = order_domain.move(status, Status.FUELLING)
    await order_repository.write_paid(
        session,
        order_id=order.id,
        status=status.value,
        paid_fen=payment.amount_fen,
        provider=payment.provider,
        paid_at=paid_at,
        settled_fen=settled_fen,
        completed_at=completed_at,
    )
    if refused is not None:  # written as paid first: the refund counts against a paid order
        log.warning("pump refused a paid order; refunding", extra={"order_id": order.id})
        await refunds.start_refund(
            session,
            order=order,
            payment=payment,
            amount_fen=payment.amount_fen,
            reason=f"油枪无法授权（{refused.code}），全额退款",
            kind="pump_refused",
            requested_by="system",
            gateways=gateways,
            now=now,
        )


# -- closing unpaid orders -----------------------------------------------------------------


async def close_order(
    session: AsyncSession,
    order: Order | OrderRow,
    *,
    status: Status,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> None:
    """Cancel or expire a (locked) pending order: close its payments, release its sale."""
    for payment in await repository.payments_of(session, order.id):
        if payment.status == "pending":
            await close_at_provider(session, payment, gateways=gateways, settings=settings, now=now)
            if payment.status == "paid":
                return  # it was paid after all: post_payment moved the order on
    current = await order_repository.reload(session, order.id)
    assert current is not None
    if current.status != Status.PENDING.value:
        return
    orders.move(current, status, now=now, reason=status.value)
    await orders.release_sale(session, current, now=now)
    outbox.publish(
        session,
        ORDER_CLOSED,
        {"order_id": current.id, "status": status.value, "kind": current.kind},
    )


async def cancel_order(
    session: AsyncSession,
    *,
    principal: Principal,
    order_id: str,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> Order:
    """The driver gives up an unpaid order."""
    order = await orders.locked_member_order(session, principal=principal, order_id=order_id)
    if order.status != Status.PENDING.value:
        raise OrderNotPayable(f"order {order.id} is {order.status}")
    await close_order(
        session, order, status=Status.CANCELLED, gateways=gateways, settings=settings, now=now
    )
    await session.refresh(order)
    return order


async def expire_order(
    session: AsyncSession, *, order_id: str, gateways: Gateways, settings: Settings, now: datetime
) -> None:
    """Expire one pending order past its time (the periodic job)."""
    order = await order_repository.lock(session, order_id)
    if order is None or order.status != Status.PENDING.value or order.expires_at > now:
        return
    await close_order(
        session, order, status=Status.EXPIRED, gateways=gateways, settings=settings, now=now
    )


def query_due(settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """(created_before, queried_before) for the active-query job."""
    delay = timedelta(seconds=settings.payment_query_after_seconds)
    return now - delay, now - delay
