"""Background work of payments: pump outcomes, active queries, expiry, refunds, reconciliation."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.kit import clock, money
from forecourt.notify import speaker
from forecourt.order import repository as order_repository
from forecourt.order.domain import Kind, Status
from forecourt.outbox import Event, handles
from forecourt.payment import callbacks, reconcile, refunds, repository, service
from forecourt.payment.gateways import active
from forecourt.payment.providers import ProviderError
from forecourt.pump import service as pumps
from forecourt.worker.jobs import scheduled

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

log = logging.getLogger("forecourt.payment")

PROVIDER_LABEL = {
    "wechatpay": "微信支付",
    "alipay": "支付宝",
    "unionpay": "云闪付",
    "wallet": "钱包",
}
NO_SALE_REASONS = frozenset({"no_flow", "expired", "stopped", "error", "link_lost", "refused"})
BATCH = 200


@handles("pump.sale_recorded", name="payment.settle_prepay")
async def settle_prepay(session: AsyncSession, event: Event) -> None:
    """A pay-at-pump sale completed: settle on the actual amount, refund the rest."""
    order_id = event.payload.get("auth_ref")
    if not order_id:
        return
    await refunds.settle_prepay(
        session,
        order_id=str(order_id),
        sale_amount_fen=int(event.payload["amount_fen"]),
        volume_ml=int(event.payload["volume_ml"]),
        gateways=active(),
        now=clock.now(),
    )
    order = await order_repository.get(session, str(order_id))
    if order is not None and order.station_id is not None and order.sale_seq is None:
        order.sale_seq = int(event.payload["seq"])
        order.fp_number = int(event.payload["fp"])
        await pumps.clear_sale(
            session,
            station_id=order.station_id,
            fp_number=order.fp_number,
            seq=order.sale_seq,
            order_id=order.id,
            now=clock.now(),
        )


@handles("pump.authorisation_ended", name="payment.authorisation_ended")
async def authorisation_ended(session: AsyncSession, event: Event) -> None:
    """An authorisation ended without a sale (no flow, expiry, fault): refund in full."""
    await _refund_unfuelled(
        session, str(event.payload.get("order_id") or ""), str(event.payload.get("reason"))
    )


def _authorise_not_done(event: Event) -> bool:
    """An authorise command that finished otherwise than done (failed, timed out)."""
    payload = event.payload
    return payload.get("type") == "authorise" and payload.get("status") != "done"


@handles("pump.command_finished", name="payment.authorise_failed", when=_authorise_not_done)
async def authorise_failed(session: AsyncSession, event: Event) -> None:
    """The pump never accepted the authorisation: refund in full."""
    if not _authorise_not_done(event):
        return
    payload = event.payload
    await _refund_unfuelled(
        session, str(payload.get("ref") or ""), f"authorise {payload.get('status')}"
    )


async def _refund_unfuelled(session: AsyncSession, order_id: str, reason: str) -> None:
    if not order_id:
        return
    order = await order_repository.lock(session, order_id)
    if order is None or order.kind != Kind.PREPAY.value:
        return
    if order.status not in (Status.PAID.value, Status.FUELLING.value):
        return
    if reason == "completed":
        return  # the sale settles the order
    if order.settled_fen is not None:
        return
    await refunds.settle_prepay(
        session,
        order_id=order.id,
        sale_amount_fen=0,
        volume_ml=0,
        gateways=active(),
        now=clock.now(),
    )


@handles(service.ORDER_PAID, name="payment.announce_paid")
async def announce_paid(session: AsyncSession, event: Event) -> None:
    """The station speaker reads out a fuel payment (e.g. "3号枪 微信支付 200.00元")."""
    payload = event.payload
    if payload.get("kind") == Kind.TOPUP.value or not payload.get("station_id"):
        return
    label = PROVIDER_LABEL.get(str(payload.get("provider")), "线上支付")
    text = f"{payload.get('nozzle')}号枪 {label} 收款 {money.yuan(int(payload['amount_fen']))}元"
    await speaker.announce(session, station_id=int(payload["station_id"]), text=text)


@handles(refunds.REFUND_REQUESTED, name="payment.send_refund")
async def send_refund(session: AsyncSession, event: Event) -> None:
    """A committed refund goes to its provider (safe twice: the number is idempotent there)."""
    await refunds.follow_up(
        session, refund_id=str(event.payload["refund_id"]), gateways=active(), now=clock.now()
    )


@scheduled("payment.query_pending", cron="* * * * *")
async def query_pending(runtime: Runtime) -> None:
    """Every minute: ask providers about payments still pending (a lost callback)."""
    now = clock.now()
    created_before, queried_before = service.query_due(runtime.settings, now)
    async with runtime.db.read_only() as session:
        due = await repository.stale_pending(
            session, created_before=created_before, queried_before=queried_before, limit=BATCH
        )
        ids = [p.id for p in due]
    for payment_id in ids:
        try:
            async with runtime.db.unit_of_work() as session:
                await callbacks.query_payment(
                    session,
                    payment_id=payment_id,
                    gateways=runtime.gateways,
                    settings=runtime.settings,
                    now=clock.now(),
                )
        except Exception:
            log.exception("payment query failed", extra={"payment_id": payment_id})


@scheduled("payment.expire_orders", cron="* * * * *")
async def expire_orders(runtime: Runtime) -> None:
    """Every minute: close unpaid orders past their time and release their sales."""
    async with runtime.db.read_only() as session:
        ids = await order_repository.expired_pending(session, now=clock.now(), limit=BATCH)
    for order_id in ids:
        try:
            async with runtime.db.unit_of_work() as session:
                await service.expire_order(
                    session,
                    order_id=order_id,
                    gateways=runtime.gateways,
                    settings=runtime.settings,
                    now=clock.now(),
                )
        except Exception:
            log.exception("order expiry failed", extra={"order_id": order_id})


@scheduled("payment.follow_refunds", cron="* * * * *")
async def follow_refunds(runtime: Runtime) -> None:
    """Every minute: re-send or query refunds a provider has not confirmed."""
    async with runtime.db.read_only() as session:
        ids = [r.id for r in await repository.refunds_in_progress(session, limit=BATCH)]
    for refund_id in ids:
        try:
            async with runtime.db.unit_of_work() as session:
                await refunds.follow_up(
                    session, refund_id=refund_id, gateways=runtime.gateways, now=clock.now()
                )
        except ProviderError as exc:
            log.info("refund follow-up failed", extra={"refund_id": refund_id, "code": exc.code})


@scheduled("payment.reconcile_daily", cron="30 10 * * *")
async def reconcile_daily(runtime: Runtime) -> None:
    """Every morning: reconcile yesterday's statement of every provider."""
    yesterday = clock.local(clock.now()).date() - timedelta(days=1)
    for name in runtime.gateways.providers:
        try:
            async with runtime.db.unit_of_work() as session:
                result = await reconcile.run(
                    session, provider=name.value, bill_date=yesterday, gateways=runtime.gateways
                )
            if result.items:
                log.warning(
                    "reconciliation found discrepancies",
                    extra={"provider": name.value, "count": len(result.items)},
                )
        except Exception:
            log.exception("reconciliation failed", extra={"provider": name.value})
