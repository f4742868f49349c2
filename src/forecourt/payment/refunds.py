"""Refunds: full and partial, idempotent, with a reason; staff approval above a threshold.

The amount is reserved on the payment (`refunded_fen`) by a conditional update when the
refund is created, so concurrent requests can never refund more than was paid; a refund that
fails or is rejected gives its reservation back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.auth.tokens import Principal
from forecourt.backoffice import audit
from forecourt.config import Settings
from forecourt.errors import FieldError
from forecourt.kit import serials
from forecourt.order import domain as order_domain
from forecourt.order import repository as order_repository
from forecourt.order import service as orders
from forecourt.order.domain import Kind, Status
from forecourt.order.models import Order
from forecourt.order.repository import OrderRow
from forecourt.payment import repository
from forecourt.payment.errors import (
    RefundNotAllowed,
    RefundNotFound,
    RefundNotPending,
    RefundTooLarge,
    SelfApproval,
)
from forecourt.payment.gateways import Gateways
from forecourt.payment.models import Payment, Refund
from forecourt.payment.providers import ProviderError, RefundRequest
from forecourt.payment.repository import PaidPayment
from forecourt.wallet import domain as wallet_domain
from forecourt.wallet import service as wallet

log = logging.getLogger("forecourt.payment")

REFUND_SUCCEEDED = "refund.succeeded"  # outbox: {refund_id, order_id, amount_fen, kind}
REFUND_REQUESTED = "refund.requested"  # outbox: {refund_id}; sent to the provider after commit
ORDER_SETTLED = "order.settled"  # outbox: {order_id, member_id, station_id, kind, settled_fen}
_serial_key: bytes = b""


def configure(serial_key: bytes) -> None:
    """Set the key refund numbers are signed with (the runtime does this at start-up)."""
    global _serial_key
    _serial_key = serial_key


async def start_refund(
    session: AsyncSession,
    *,
    order: Order | OrderRow,
    payment: Payment | PaidPayment,
    amount_fen: int,
    reason: str,
    kind: str,
    requested_by: str,
    gateways: Gateways,
    now: datetime,
    needs_approval: bool = False,
) -> Refund:
    """Reserve the amount on the payment, then send the refund (or hold it for approval)."""
    if not await repository.add_refunded(session, payment_id=payment.id, amount_fen=amount_fen):
        left = payment.amount_fen - payment.refunded_fen
        raise RefundTooLarge(f"at most {left} fen of this payment can still be refunded")
    reloaded = await repository.reload_payment(session, payment.id)  # as reserved just now
    assert reloaded is not None
    payment = reloaded
    refund = Refund(
        id=serials.new_serial(_serial_key, device="refund", now=now),
        order_id=order.id,
        payment_id=payment.id,
        provider=payment.provider,
        kind=kind,
        status="pending_approval" if needs_approval else "processing",
        amount_fen=amount_fen,
        reason=reason,
        requested_by=requested_by,
        created_at=now,
    )
    await repository.add_refund(session, refund)
    if not needs_approval:
        await dispatch(session, refund=refund, payment=payment, gateways=gateways, now=now)
    return refund


async def dispatch(
    session: AsyncSession, *, refund: Refund, payment: Payment, gateways: Gateways, now: datetime
) -> None:
    """Settle a wallet refund now; a provider refund is sent after this commit (outbox)."""
    if refund.provider == "wallet":
        await send(session, refund=refund, payment=payment, gateways=gateways, now=now)
        return
    outbox.publish(session, REFUND_REQUESTED, {"refund_id": refund.id})


async def send(
    session: AsyncSession, *, refund: Refund, payment: Payment, gateways: Gateways, now: datetime
) -> None:
    """Send a processing refund to its channel (the wallet settles at once)."""
    if refund.provider == "wallet":
        await wallet.refund(
            session,
            member_id=payment.member_id,
            payment_id=payment.id,
            refund_id=refund.id,
            amount_fen=refund.amount_fen,
        )
        await _finish(session, refund, succeeded=True, refund_ref=refund.id, now=now)
        return
    provider = gateways.get(refund.provider)
    try:
        result = await provider.refund(
            RefundRequest(
                out_trade_no=payment.id,
                transaction_id=payment.transaction_id or "",
                out_refund_no=refund.id,
                refund_fen=refund.amount_fen,
                total_fen=payment.amount_fen,
                reason=refund.reason,
                notify_url=_notify_url(refund.provider),
                requested_at=refund.created_at,
            )
        )
    except ProviderError as exc:
        if exc.retryable:
            log.info("refund will be retried", extra={"refund_id": refund.id, "code": exc.code})
            return
        await _finish(
            session, refund, succeeded=False, failure=f"{exc.code}: {exc.message}", now=now
        )
        return
    refund.refund_ref = result.refund_id
    if result.state != "processing":
        await _finish(
            session,
            refund,
            succeeded=result.state == "succeeded",
            refund_ref=result.refund_id,
            now=now,
        )


_notify_base = "http://127.0.0.1:8000"


def set_notify_base(base: str) -> None:
    """Public base URL of the provider callbacks (from settings)."""
    global _notify_base
    _notify_base = base.rstrip("/")


def _notify_url(provider: str) -> str:
    return f"{_notify_base}/api/v1/payments/notify/{provider}"


async def apply_provider_result(
    session: AsyncSession,
    *,
    refund_id: str,
    provider: str,
    succeeded: bool,
    refund_ref: str | None,
    amount_fen: int,
    gateways: Gateways,
    now: datetime,
) -> str:
    """A refund callback or query answer; idempotent."""
    refund = await repository.lock_refund(session, refund_id)
    if refund is None or refund.provider != provider:
        return "unknown_order"
    if refund.status != "processing":
        return "duplicate"  # e.g. Alipay confirms synchronous refunds again, with running totals
    if refund.amount_fen != amount_fen:
        return "mismatch"
    await _finish(session, refund, succeeded=succeeded, refund_ref=refund_ref, now=now)
    return "applied"


async def _finish(
    session: AsyncSession,
    refund: Refund,
    *,
    succeeded: bool,
    now: datetime,
    refund_ref: str | None = None,
    failure: str | None = None,
) -> None:
    """processing -> succeeded (count it on the order) or failed (give the reservation back)."""
    refund.completed_at = now
    if refund_ref:
        refund.refund_ref = refund_ref
    order = await order_repository.lock(session, refund.order_id)
    assert order is not None
    if not succeeded:
        refund.status = "failed"
        refund.failure = failure or "refused by the provider"
        await repository.add_refunded(
            session, payment_id=refund.payment_id, amount_fen=-refund.amount_fen
        )
        if refund.kind == "withdrawal":
            await wallet.withdrawal_failed(
                session,
                member_id=order.member_id,
                refund_id=refund.id,
                amount_fen=refund.amount_fen,
            )
        log.error("refund failed", extra={"refund_id": refund.id, "failure": refund.failure})
        return
    refund.status = "succeeded"
    if refund.kind != "withdrawal":
        order.refunded_fen += refund.amount_fen
        _close_if_refunded(order, now)
    outbox.publish(
        session,
        REFUND_SUCCEEDED,
        {
            "refund_id": refund.id,
            "order_id": order.id,
            "member_id": order.member_id,
            "amount_fen": refund.amount_fen,
            "kind": refund.kind,
        },
    )


def _close_if_refunded(order: Order, now: datetime) -> None:
    """An order whose whole payment came back is refunded (unless it never became paid)."""
    if order.paid_fen == 0 or order.refunded_fen < order.paid_fen:
        return
    if order.status in (Status.PAID.value, Status.FUELLING.value, Status.COMPLETED.value):
        orders.move(order, Status.REFUNDED, now=now, reason="refunded")


async def settle_prepay(
    session: AsyncSession,
    *,
    order_id: str,
    sale_amount_fen: int,
    volume_ml: int,
    gateways: Gateways,
    now: datetime,
) -> None:
    """Pay-at-pump finished: keep the amount pumped and refund the rest at once."""
    order = await order_repository.lock(session, order_id)
    if order is None or order.kind != Kind.PREPAY.value:
        return
    if (
        order.status not in (Status.PAID.value, Status.FUELLING.value)
        or order.settled_fen is not None
    ):
        return
    charged, back = order_domain.settle_prepay(
        paid_fen=order.paid_fen,
        sale_amount_fen=sale_amount_fen,
        volume_ml=volume_ml,
        unit_price_fen=order.unit_price_fen or 0,
        tier=order_domain.tier_of(order.lines),
    )
    order.settled_fen = charged
    order.volume_ml = volume_ml
    if Status(order.status) is Status.PAID:
        orders.move(order, Status.FUELLING, now=now)
    orders.move(order, Status.COMPLETED, now=now)
    outbox.publish(
        session,
        ORDER_SETTLED,
        {
            "order_id": order.id,
            "member_id": order.member_id,
            "station_id": order.station_id,
            "kind": order.kind,
            "settled_fen": charged,
        },
    )
    if back > 0:
        payment = await _paid_payment(session, order)
        await start_refund(
            session,
            order=order,
            payment=payment,
            amount_fen=back,
            reason=f"预付 {order.paid_fen} 分，实加 {charged} 分，退差额",
            kind="settlement",
            requested_by="system",
            gateways=gateways,
            now=now,
        )


async def _paid_payment(session: AsyncSession, order: Order) -> Payment:
    for payment in await repository.payments_of(session, order.id):
        if payment.status == "paid" and payment.refunded_fen < payment.amount_fen:
            return payment
    raise RefundTooLarge(f"order {order.id} has nothing left to refund")


# -- staff refunds and wallet withdrawal ---------------------------------------------------

REFUNDABLE = (Status.PAID.value, Status.COMPLETED.value)


async def request_refund(
    session: AsyncSession,
    *,
    principal: Principal,
    order_id: str,
    amount_fen: int,
    reason: str,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> Refund:
    """Staff refund part or all of an order; above the threshold it waits for approval."""
    order = await orders.staff_order(session, principal=principal, order_id=order_id)
    order = await order_repository.lock(session, order.id) or order
    if order.status not in REFUNDABLE or order.kind == Kind.TOPUP.value:
        raise RefundNotAllowed(f"order {order.id} is {order.status}; it cannot be refunded now")
    payment = await _paid_payment(session, order)
    held = await repository.open_refund_total(session, payment.id)
    left = payment.amount_fen - payment.refunded_fen
    if amount_fen > left:
        raise RefundTooLarge(
            f"at most {left} fen can still be refunded"
            + (f" ({held} fen await approval)" if held else ""),
            errors=[FieldError("amount_fen", f"must be at most {left}")],
        )
    refund = await start_refund(
        session,
        order=order,
        payment=payment,
        amount_fen=amount_fen,
        reason=reason,
        kind="customer",
        requested_by=principal.subject,
        gateways=gateways,
        now=now,
        needs_approval=amount_fen > settings.refund_approval_fen,
    )
    audit.record(
        session,
        principal,
        "refund.requested",
        subject_type="refund",
        subject_id=refund.id,
        station_id=order.station_id,
        details={
            "order_id": order.id,
            "amount_fen": amount_fen,
            "reason": reason,
            "status": refund.status,
        },
        now=now,
    )
    return refund


async def decide_refund(
    session: AsyncSession,
    *,
    principal: Principal,
    refund_id: str,
    approve: bool,
    gateways: Gateways,
    now: datetime,
) -> Refund:
    """A manager (not the requester) approves or rejects a held refund."""
    refund = await repository.lock_refund(session, refund_id)
    if refund is None:
        raise RefundNotFound(f"no refund {refund_id}")
    order = await orders.staff_order(session, principal=principal, order_id=refund.order_id)
    if refund.status != "pending_approval":
        raise RefundNotPending(f"refund {refund.id} is {refund.status}")
    if refund.requested_by == principal.subject:
        raise SelfApproval("another manager must approve this refund")
    refund.approved_by = principal.subject
    audit.record(
        session,
        principal,
        "refund.decided",
        subject_type="refund",
        subject_id=refund.id,
        station_id=order.station_id,
        details={"order_id": order.id, "amount_fen": refund.amount_fen, "approve": approve},
        now=now,
    )
    payment = await repository.payment(session, refund.payment_id)
    assert payment is not None
    if not approve:
        refund.status = "rejected"
        refund.completed_at = now
        await repository.add_refunded(session, payment_id=payment.id, amount_fen=-refund.amount_fen)
        return refund
    refund.status = "processing"
    await dispatch(session, refund=refund, payment=payment, gateways=gateways, now=now)
    return refund


async def refunds_for_staff(
    session: AsyncSession, *, principal: Principal, order_id: str
) -> Sequence[Refund]:
    """An order's refunds, for staff of its station."""
    order = await orders.staff_order(session, principal=principal, order_id=order_id)
    return await repository.refunds_of(session, order.id)


async def withdraw_wallet(
    session: AsyncSession, *, member_id: int, gateways: Gateways, now: datetime
) -> list[Refund]:
    """Return the wallet's principal to the top-ups' channels, newest first; forfeit bonus."""
    account = await wallet.balance(session, member_id)
    principal_fen, bonus_fen = account.principal_fen, account.bonus_fen
    if principal_fen <= 0 and bonus_fen <= 0:
        return []
    topups = await repository.refundable_topups(session, member_id)
    plan = wallet_domain.withdrawal_plan(
        principal_fen, [(p.id, p.amount_fen - p.refunded_fen) for p in topups]
    )
    planned = sum(amount for _, amount in plan)
    withdrawal_id = serials.new_serial(_serial_key, device="withdraw", now=now)
    await wallet.withdraw(
        session,
        member_id=member_id,
        withdrawal_id=withdrawal_id,
        principal_fen=planned,
        bonus_fen=bonus_fen,
    )
    by_id = {p.id: p for p in topups}
    made: list[Refund] = []
    for payment_id, amount in plan:
        payment = by_id[payment_id]
        order = await order_repository.lock(session, payment.order_id)
        assert order is not None
        made.append(
            await start_refund(
                session,
                order=order,
                payment=payment,
                amount_fen=amount,
                reason="钱包余额提现，原路退回",
                kind="withdrawal",
                requested_by=f"member:{member_id}",
                gateways=gateways,
                now=now,
            )
        )
    return made


async def follow_up(
    session: AsyncSession, *, refund_id: str, gateways: Gateways, now: datetime
) -> None:
    """A refund still processing: send it again (idempotent by number) or ask for its state."""
    refund = await repository.lock_refund(session, refund_id)
    if refund is None or refund.status != "processing" or refund.provider == "wallet":
        return
    payment = await repository.payment(session, refund.payment_id)
    assert payment is not None
    if refund.refund_ref is None:
        await send(session, refund=refund, payment=payment, gateways=gateways, now=now)
        return
    result = await gateways.get(refund.provider).query_refund(
        refund.id, out_trade_no=payment.id, requested_at=refund.created_at
    )
    if result.state != "processing":
        await _finish(
            session,
            refund,
            succeeded=result.state == "succeeded",
            refund_ref=result.refund_id,
            now=now,
        )
