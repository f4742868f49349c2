"""Provider callbacks and active queries: verify, record, and post through the service.

A callback is stored once per provider event; whatever its order of arrival, it only ever
moves a payment forward (see `service.post_payment`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.config import Settings
from forecourt.payment import refunds, repository
from forecourt.payment.gateways import Gateways
from forecourt.payment.providers import (
    InvalidNotification,
    NotificationAck,
    ProviderError,
    ProviderNotification,
)
from forecourt.payment.service import close_at_provider, post_payment

log = logging.getLogger("forecourt.payment")


async def handle_notification(
    session: AsyncSession,
    *,
    provider_name: str,
    headers: Mapping[str, str],
    body: bytes,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> NotificationAck:
    """Verify a callback, record it, and apply it (idempotent, safe out of order)."""
    provider = gateways.get(provider_name)
    try:
        note = provider.parse_notification(headers, body)
    except InvalidNotification as exc:
        log.warning(
            "payment notification refused", extra={"provider": provider_name, "why": str(exc)}
        )
        return provider.acknowledge(False)
    if note.merchant_id != provider.merchant_id:
        log.warning("notification for another merchant", extra={"provider": provider_name})
        return provider.acknowledge(False)
    outcome = await _apply_notification(
        session, provider_name, note, gateways=gateways, settings=settings, now=now
    )
    fresh = await repository.record_notification(
        session,
        provider=provider_name,
        event_id=note.event_id[:80],
        kind=note.kind,
        out_trade_no=note.out_trade_no,
        out_refund_no=note.out_refund_no,
        transaction_id=note.transaction_id,
        amount_fen=note.amount_fen,
        succeeded=note.succeeded,
        outcome=outcome,
        received_at=now,
    )
    if outcome == "mismatch":
        return provider.acknowledge(False)
    if not fresh:
        log.info("duplicate payment notification", extra={"provider": provider_name})
    return provider.acknowledge(True)


async def _apply_notification(
    session: AsyncSession,
    provider_name: str,
    note: ProviderNotification,
    *,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> str:
    if note.kind == "refund":
        return await refunds.apply_provider_result(
            session,
            refund_id=note.out_refund_no or "",
            provider=provider_name,
            succeeded=note.succeeded,
            refund_ref=note.refund_id,
            amount_fen=note.amount_fen,
            gateways=gateways,
            now=now,
        )
    if note.succeeded and await post_payment(
        session,
        payment_id=note.out_trade_no,
        transaction_id=note.transaction_id,
        amount_fen=note.amount_fen,
        paid_at=note.occurred_at or now,
        gateways=gateways,
        settings=settings,
        now=now,
        provider=provider_name,
    ):
        return "applied"  # the usual case, in one conditional update; else find out why not
    payment = await repository.payment(session, note.out_trade_no)
    if payment is None or payment.provider != provider_name:
        log.warning("notification for an unknown order", extra={"provider": provider_name})
        return "unknown_order"
    if not note.succeeded:
        return "not_paid"
    if note.amount_fen != payment.amount_fen:
        log.error(
            "notification amount differs from the payment; not posted",
            extra={"payment_id": payment.id, "provider": provider_name},
        )
        return "mismatch"
    return "duplicate"


async def query_payment(
    session: AsyncSession,
    *,
    payment_id: str,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> str:
    """Ask the provider about a pending payment and post or close it; the outcome."""
    payment = await repository.payment(session, payment_id)
    if payment is None or payment.status != "pending" or payment.provider == "wallet":
        return "skipped"
    await repository.touch_queried(session, payment_id=payment.id, now=now)
    try:
        status = await gateways.get(payment.provider).query(
            payment.id, requested_at=payment.created_at
        )
    except ProviderError as exc:
        log.info("payment query failed", extra={"payment_id": payment.id, "code": exc.code})
        return "error"
    if status.state == "paid" and status.transaction_id:
        if status.amount_fen is not None and status.amount_fen != payment.amount_fen:
            log.error("queried amount differs; not posted", extra={"payment_id": payment.id})
            return "mismatch"
        posted = await post_payment(
            session,
            payment_id=payment.id,
            transaction_id=status.transaction_id,
            amount_fen=payment.amount_fen,
            paid_at=status.paid_at or now,
            gateways=gateways,
            settings=settings,
            now=now,
        )
        return "paid" if posted else "duplicate"
    if status.state in ("closed", "failed") or payment.expires_at <= now:
        await close_at_provider(session, payment, gateways=gateways, settings=settings, now=now)
        return "closed"
    return "pending"
