"""Background work of invoices: submit after commit, red-letter on refunds, e-mail, follow-up."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.invoice import documents, issuing, repository, service
from forecourt.invoice.domain import Status
from forecourt.invoice.providers import InvoiceProviderError, active
from forecourt.kit import clock
from forecourt.outbox import Event, handles
from forecourt.payment.refunds import REFUND_SUCCEEDED
from forecourt.worker.jobs import scheduled

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

log = logging.getLogger("forecourt.invoice")
BATCH = 200
NOT_INVOICED_REFUNDS = frozenset({"settlement", "withdrawal"})


@handles(service.REQUESTED, name="invoice.submit")
async def submit(session: AsyncSession, event: Event) -> None:
    """Send a requested invoice (blue or red) to the provider, after its request committed."""
    invoicing = active()
    await issuing.submit(
        session,
        invoice_id=int(event.payload["invoice_id"]),
        invoicing=invoicing,
        settings=invoicing.settings,
        now=clock.now(),
    )


@handles(REFUND_SUCCEEDED, name="invoice.reverse_on_refund")
async def reverse_on_refund(session: AsyncSession, event: Event) -> None:
    """A customer refund of an invoiced order: red-letter its invoice, then re-issue the rest."""
    if event.payload.get("kind") in NOT_INVOICED_REFUNDS:
        return
    await issuing.after_refund(session, order_id=str(event.payload["order_id"]), now=clock.now())


@handles(service.EMAIL_REQUESTED, name="invoice.email_requested")
async def email_requested(session: AsyncSession, event: Event) -> None:
    """Send an issued invoice's PDF: on issue (once), or again on the driver's request."""
    invoicing = active()
    raw = event.payload.get("email")
    if event.payload.get("on_issue"):
        invoice = await repository.get(session, int(event.payload["invoice_id"]))
        if invoice is None or invoice.emailed_at is not None:
            return
    await documents.send_email(
        session,
        invoice_id=int(event.payload["invoice_id"]),
        to_cipher=base64.b64decode(str(raw)) if raw else None,
        settings=invoicing.settings,
        data_key=invoicing.data_key,
        now=clock.now(),
    )


@scheduled("invoice.query_issuing", cron="* * * * *")
async def query_issuing(runtime: Runtime) -> None:
    """Every minute: ask the provider about invoices issuing for a while (a lost callback)."""
    before = clock.now() - timedelta(seconds=runtime.settings.invoice_query_after_seconds)
    async with runtime.db.read_only() as session:
        ids = await repository.stale(
            session, statuses=[Status.ISSUING.value], before=before, limit=BATCH
        )
    for invoice_id in ids:
        try:
            async with runtime.db.unit_of_work() as session:
                await issuing.refresh(
                    session,
                    invoice_id=invoice_id,
                    invoicing=runtime.invoicing,
                    settings=runtime.settings,
                    now=clock.now(),
                )
        except InvoiceProviderError as exc:
            log.info("invoice query failed", extra={"invoice_id": invoice_id, "code": exc.code})
