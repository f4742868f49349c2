"""Background work of loyalty: points on order events, CRM tags, re-tiering, expiry."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.kit import clock
from forecourt.loyalty import (
    crm,
    crm_repository,
    mall,
    mall_repository,
    repository,
    retier,
    service,
)
from forecourt.outbox import Event, handles
from forecourt.payment import refunds
from forecourt.payment.service import ORDER_PAID
from forecourt.worker.jobs import scheduled

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

log = logging.getLogger("forecourt.loyalty")

BATCH = 500
CRM_ROUNDS = 20  # batches per minute at most


def _earns_when_paid(event: Event) -> bool:
    """Only a post-pay order earns on payment: pay-at-pump earns on settling, top-ups never."""
    return event.payload.get("kind") not in ("topup", "prepay")


@handles(ORDER_PAID, name="loyalty.points_on_paid", when=_earns_when_paid)
async def points_on_paid(session: AsyncSession, event: Event) -> None:
    """A post-pay order (wallet too) was paid: it earns now."""
    await service.sync_order(
        session, order_id=str(event.payload["order_id"]), trigger="paid", now=clock.now()
    )


@handles(refunds.ORDER_SETTLED, name="loyalty.points_on_settled")
async def points_on_settled(session: AsyncSession, event: Event) -> None:
    """A pay-at-pump order settled on what was pumped: it earns on the amount kept."""
    await service.sync_order(
        session, order_id=str(event.payload["order_id"]), trigger="settled", now=clock.now()
    )


@handles(refunds.REFUND_SUCCEEDED, name="loyalty.points_on_refund")
async def points_on_refund(session: AsyncSession, event: Event) -> None:
    """A refund went through: points and growth follow the amount kept."""
    if event.payload.get("kind") == "withdrawal":
        return
    await service.sync_order(
        session,
        order_id=str(event.payload["order_id"]),
        trigger=str(event.payload.get("refund_id", "refund")),
        now=clock.now(),
    )


@handles(retier.TIERS_CHANGED, name="loyalty.crm_wanted")
async def crm_wanted(session: AsyncSession, event: Event) -> None:
    """Tier changes: queue the WeCom tags (sent in batches by `loyalty.crm_sync`)."""
    moved = sorted(
        (int(c["member_id"]), str(c["to"]))
        for c in event.payload.get("changes", [])
        if c.get("from") != c.get("to")
    )
    await crm_repository.want_tags(session, moved, now=clock.now())


@scheduled("loyalty.crm_sync", cron="* * * * *")
async def crm_sync(runtime: Runtime) -> None:
    """Every minute: send due WeCom tag syncs, batch after batch, until none are due."""
    api, sandbox = crm.client_for(runtime.settings)
    for _ in range(CRM_ROUNDS):
        report = await crm.sync_due(
            runtime.db, api=api, settings=runtime.settings, now=clock.now(), sandbox=sandbox
        )
        if report.total == 0 or report.retrying:
            break
        if report.failed:
            log.warning("wecom tag sync failed", extra={"errors": report.errors[:5]})


@scheduled("loyalty.retier", cron="30 2 * * *")
async def nightly_retier(runtime: Runtime) -> None:
    """Every night: re-tier every member from growth and RFM (safe to run twice)."""
    settings = runtime.settings
    result = await retier.retier(
        runtime.db,
        now=clock.now(),
        window_days=settings.loyalty_window_days,
        grace_days=settings.loyalty_grace_days,
        batch=settings.loyalty_retier_batch,
    )
    log.info("re-tiering done", extra={"result": result.__dict__})


@scheduled("loyalty.expire_points", cron="10 0 * * *")
async def expire_points(runtime: Runtime) -> None:
    """Every night: expire lots past their date (31 December), oldest first."""
    now, after = clock.now(), 0
    while True:
        async with runtime.db.read_only() as session:
            ids = await repository.members_with_lapsed_lots(
                session, now=now, after=after, limit=BATCH
            )
        if not ids:
            return
        for member_id in ids:
            try:
                async with runtime.db.unit_of_work() as session:
                    await service.expire_member(session, member_id=member_id, now=now)
            except Exception:
                log.exception("points expiry failed", extra={"member_id": member_id})
        after = ids[-1]


@scheduled("loyalty.expire_redemptions", cron="20 0 * * *")
async def expire_redemptions(runtime: Runtime) -> None:
    """Every night: cancel redemptions not picked up in time (points and stock back)."""
    now = clock.now()
    async with runtime.db.read_only() as session:
        ids = await mall_repository.overdue(session, now=now, limit=10 * BATCH)
    for redemption_id in ids:
        try:
            async with runtime.db.unit_of_work() as session:
                await mall.expire_overdue(session, redemption_id=redemption_id, now=now)
        except Exception:
            log.exception("redemption expiry failed", extra={"redemption_id": redemption_id})
