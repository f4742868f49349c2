"""Talking to the provider: submit, apply results (callback or query), red-letter and re-issue.

Every transition is a check of the invoice's status under its row lock, so a callback, its
repeats and the active query race harmlessly: the first applies the result, the others find
the invoice final. A repeated submission reuses the request number, which the provider
answers with the serial it gave the first time. When a blue invoice is issued its amounts are
compared with the orders' current ones (a refund may have succeeded meanwhile); a difference
reverses it at once. A red-letter invoice, once issued, gives the quota back and re-issues a
blue invoice for what is left to invoice, if anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.config import Settings
from forecourt.invoice import domain, repository, service
from forecourt.invoice.domain import Kind, Status
from forecourt.invoice.models import Invoice, InvoiceLine
from forecourt.invoice.providers import (
    CallbackAck,
    InvalidCallback,
    InvoiceProviderError,
    Invoicing,
    IssueLine,
    IssueRequest,
    IssueResult,
)
from forecourt.order import repository as order_repository

log = logging.getLogger("forecourt.invoice")

RED_REASON_RETURN = "2"  # 销货退回


def callback_url(settings: Settings) -> str:
    """Where the provider sends results."""
    base = (settings.invoice_notify_base_url or settings.public_url).rstrip("/")
    return f"{base}/api/v1/invoices/notify/nuonuo"


def issue_request(
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    *,
    original_number: str | None,
    settings: Settings,
) -> IssueRequest:
    """The provider request of an invoice."""
    return IssueRequest(
        order_no=invoice.invoice_no,
        kind="red" if invoice.kind == Kind.RED.value else "blue",
        seller_tax_id=invoice.seller_tax_id,
        seller_name=invoice.seller_name,
        seller_address=invoice.seller_address,
        buyer_kind="personal" if invoice.buyer_kind == "personal" else "company",
        buyer_name=invoice.buyer_name,
        buyer_tax_id=invoice.buyer_tax_id,
        lines=tuple(
            IssueLine(
                goods_name=line.goods_name,
                tax_code=line.tax_code,
                unit=line.unit,
                volume_ml=line.volume_ml,
                unit_price=line.unit_price,
                amount_fen=line.amount_fen,
                net_fen=line.net_fen,
                tax_fen=line.tax_fen,
                rate=domain.RATE,
            )
            for line in lines
        ),
        issued_at=invoice.created_at,
        clerk=settings.invoice_clerk,
        callback_url=callback_url(settings),
        original_number=original_number,
        red_reason=invoice.red_reason,
    )


async def submit(
    session: AsyncSession,
    *,
    invoice_id: int,
    invoicing: Invoicing,
    settings: Settings,
    now: datetime,
) -> None:
    """Send a requested invoice to the provider (safe to repeat: same request number)."""
    invoice = await repository.lock(session, invoice_id)
    if invoice is None or invoice.status != Status.REQUESTED.value:
        return
    lines = (await repository.lines_of(session, [invoice.id]))[invoice.id]
    original_number = None
    if invoice.original_id is not None:
        original = await repository.get(session, invoice.original_id)
        original_number = original.invoice_number if original else None
    request = issue_request(invoice, lines, original_number=original_number, settings=settings)
    try:
        serial = await invoicing.provider.issue(request)
    except InvoiceProviderError as exc:
        if exc.retryable:
            raise
        log.warning("invoice refused", extra={"invoice_no": invoice.invoice_no, "code": exc.code})
        await fail(session, invoice, f"{exc.code}: {exc.message}"[:200], now=now)
        return
    invoice.provider_serial = serial
    service.move(session, invoice, Status.ISSUING, now=now)


async def fail(session: AsyncSession, invoice: Invoice, reason: str, *, now: datetime) -> None:
    """Not issued: a blue gives its orders and quota back; a red leaves its blue issued."""
    invoice.failure = reason
    service.move(session, invoice, Status.FAILED, now=now)
    if invoice.kind == Kind.BLUE.value:
        await repository.release(session, invoice.id)
        await repository.give_back_quota(
            session, seller_id=invoice.seller_id, volume_ml=invoice.volume_ml
        )
        return
    assert invoice.original_id is not None
    blue = await repository.lock(session, invoice.original_id)
    if blue is not None and blue.status == Status.REVERSING.value:
        service.move(session, blue, Status.ISSUED, now=now)
    log.error("red-letter invoice failed", extra={"invoice_no": invoice.invoice_no})


async def apply_result(
    session: AsyncSession,
    invoice: Invoice,
    result: IssueResult,
    *,
    settings: Settings,
    now: datetime,
) -> str:
    """Apply the provider's result to the (locked) invoice once: applied | pending | duplicate."""
    if invoice.status not in (Status.REQUESTED.value, Status.ISSUING.value):
        return "duplicate"
    if invoice.provider_serial is None:
        invoice.provider_serial = result.serial
    if result.state == "issuing":
        return "pending"
    if result.state == "failed":
        await fail(session, invoice, (result.failure or "refused by the provider")[:200], now=now)
        return "applied"
    if result.total_fen is not None and result.total_fen != invoice.total_fen:
        log.error("provider total differs", extra={"invoice_no": invoice.invoice_no})
    invoice.invoice_number = result.invoice_number
    invoice.issued_at = result.issued_at or now
    invoice.qr_content = result.qr_content
    service.move(session, invoice, Status.ISSUED, now=now)
    if invoice.email_cipher is not None:
        outbox.publish(
            session, service.EMAIL_REQUESTED, {"invoice_id": invoice.id, "on_issue": True}
        )
    if invoice.kind == Kind.RED.value:
        await _reversed(session, invoice, settings=settings, now=now)
    else:
        await reconcile(session, invoice, now=now)
    return "applied"


async def _current_amounts(session: AsyncSession, order_ids: Sequence[str]) -> dict[str, int]:
    """What each order may be invoiced for now (0 when fully refunded)."""
    refunds = await repository.refund_state(session, order_ids)
    amounts: dict[str, int] = {}
    for order_id in order_ids:
        order = await order_repository.get(session, order_id)
        assert order is not None
        amounts[order_id] = domain.invoiceable_fen(
            settled_fen=order.settled_fen,
            paid_fen=order.paid_fen,
            refunded_after_fen=refunds.get(order_id, (0, 0))[0],
        )
    return amounts


async def reconcile(session: AsyncSession, blue: Invoice, *, now: datetime) -> Invoice | None:
    """Reverse an issued blue invoice whose orders were refunded since; the red invoice."""
    if blue.kind != Kind.BLUE.value or blue.status != Status.ISSUED.value:
        return None
    lines = (await repository.lines_of(session, [blue.id]))[blue.id]
    current = await _current_amounts(session, [line.order_id for line in lines])
    if all(current[line.order_id] == line.amount_fen for line in lines):
        return None
    return await start_reversal(session, blue, lines, now=now)


async def start_reversal(
    session: AsyncSession, blue: Invoice, lines: Sequence[InvoiceLine], *, now: datetime
) -> Invoice:
    """The red-letter invoice of the whole (locked, issued) blue one, to be submitted."""
    red = Invoice(
        invoice_no=service.new_invoice_no(now),
        kind=Kind.RED.value,
        status=Status.REQUESTED.value,
        member_id=blue.member_id,
        seller_id=blue.seller_id,
        seller_tax_id=blue.seller_tax_id,
        seller_name=blue.seller_name,
        seller_address=blue.seller_address,
        buyer_kind=blue.buyer_kind,
        buyer_name=blue.buyer_name,
        buyer_tax_id=blue.buyer_tax_id,
        email_cipher=blue.email_cipher,
        email_masked=blue.email_masked,
        total_fen=-blue.total_fen,
        net_fen=-blue.net_fen,
        tax_fen=-blue.tax_fen,
        volume_ml=-blue.volume_ml,
        provider=blue.provider,
        original_id=blue.id,
        red_reason=RED_REASON_RETURN,
        created_at=now,
        status_at=now,
    )
    red_lines = [
        InvoiceLine(
            line_no=line.line_no,
            order_id=line.order_id,
            station_id=line.station_id,
            grade_code=line.grade_code,
            goods_name=line.goods_name,
            tax_code=line.tax_code,
            unit=line.unit,
            volume_ml=-line.volume_ml,
            unit_price=line.unit_price,
            amount_fen=-line.amount_fen,
            net_fen=-line.net_fen,
            tax_fen=-line.tax_fen,
        )
        for line in lines
    ]
    await repository.add_invoice(session, red, red_lines)
    service.move(session, blue, Status.REVERSING, now=now)
    outbox.publish(session, service.REQUESTED, {"invoice_id": red.id})
    service.announce(session, red)
    return red


async def _reversed(
    session: AsyncSession, red: Invoice, *, settings: Settings, now: datetime
) -> None:
    """The red invoice is issued: the blue is reversed, quota back, re-issue what is left."""
    assert red.original_id is not None
    blue = await repository.lock(session, red.original_id)
    assert blue is not None
    service.move(session, blue, Status.REVERSED, now=now)
    await repository.give_back_quota(session, seller_id=blue.seller_id, volume_ml=blue.volume_ml)
    lines = (await repository.lines_of(session, [blue.id]))[blue.id]
    current = await _current_amounts(session, [line.order_id for line in lines])
    goods = domain.goods_table(settings.invoice_goods)
    kept: list[InvoiceLine] = []
    for line in lines:
        amount = current[line.order_id]
        order = await order_repository.get(session, line.order_id)
        if amount <= 0 or order is None or order.grade_code not in goods:
            continue
        kept.append(
            service.make_line(
                order, line_no=len(kept) + 1, amount_fen=amount, goods=goods[line.grade_code]
            )
        )
    if not kept:
        return
    seller = await repository.seller(session, blue.seller_id)
    assert seller is not None
    new = service.blue_invoice(
        member_id=blue.member_id, seller=seller, buyer=blue, lines=kept, data_key=b"", now=now
    )
    new.replaces_id = blue.id
    await repository.add_invoice(session, new, kept)
    await repository.move_claims(
        session, order_ids=[line.order_id for line in kept], from_id=blue.id, to_id=new.id
    )
    if not await repository.draw_quota(session, seller_id=seller.id, volume_ml=new.volume_ml):
        new.failure = "oil_quota_exhausted: the seller's refined-oil quota is used up"
        new.status = Status.FAILED.value
        await repository.release(session, new.id)
        service.announce(session, new)
        return
    outbox.publish(session, service.REQUESTED, {"invoice_id": new.id})
    service.announce(session, new)


async def after_refund(session: AsyncSession, *, order_id: str, now: datetime) -> None:
    """A refund of an order succeeded: reverse its issued invoice if its amount changed.

    An invoice still under way is reconciled when its result arrives; a reversal under way
    re-issues with the amounts of that moment.
    """
    claims = await repository.claims(session, [order_id])
    if order_id not in claims:
        return
    blue = await repository.lock(session, claims[order_id])
    if blue is not None:
        await reconcile(session, blue, now=now)


async def refresh(
    session: AsyncSession,
    *,
    invoice_id: int,
    invoicing: Invoicing,
    settings: Settings,
    now: datetime,
) -> str:
    """Ask the provider about an invoice under way and apply the answer."""
    invoice = await repository.get(session, invoice_id)
    if invoice is None or invoice.status != Status.ISSUING.value or not invoice.provider_serial:
        return "duplicate"
    result = await invoicing.provider.query(
        invoice.provider_serial, seller_tax_id=invoice.seller_tax_id
    )
    if result is None:
        return "unknown"
    locked = await repository.lock(session, invoice_id)
    assert locked is not None
    return await apply_result(session, locked, result, settings=settings, now=now)


async def handle_callback(
    session: AsyncSession,
    *,
    headers: Mapping[str, str],
    body: bytes,
    invoicing: Invoicing,
    settings: Settings,
    now: datetime,
) -> CallbackAck:
    """A result callback: confirmed by a query, applied once (repeats are acknowledged).

    The provider is asked before the invoice is locked, so no row lock (nor SQLite's write
    lock) is held during the query.
    """
    provider = invoicing.provider
    try:
        note = provider.parse_callback(headers, body)
    except InvalidCallback as exc:
        log.warning("invoice callback refused", extra={"why": str(exc)})
        return provider.acknowledge(False)
    invoice = await repository.by_invoice_no(session, note.order_no)
    if invoice is None or invoice.provider_serial not in (None, note.serial):
        log.warning("callback for an unknown invoice", extra={"invoice_no": note.order_no})
        return provider.acknowledge(True)
    if invoice.status not in (Status.REQUESTED.value, Status.ISSUING.value):
        log.info("duplicate invoice callback", extra={"invoice_no": note.order_no})
        return provider.acknowledge(True)
    try:
        result = await provider.query(note.serial, seller_tax_id=invoice.seller_tax_id)
    except InvoiceProviderError as exc:
        log.warning("invoice query failed", extra={"invoice_no": note.order_no, "code": exc.code})
        return provider.acknowledge(False)
    if result is None or result.order_no != invoice.invoice_no:
        log.warning("callback not confirmed by query", extra={"invoice_no": note.order_no})
        return provider.acknowledge(True)
    locked = await repository.lock(session, invoice.id)
    assert locked is not None
    outcome = await apply_result(session, locked, result, settings=settings, now=now)
    log.info("invoice callback", extra={"invoice_no": note.order_no, "outcome": outcome})
    return provider.acknowledge(True)
