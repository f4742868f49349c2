"""Invoice requests: which paid fuel orders may be invoiced, for how much, by which seller.

Rules: only completed fuel orders (post-pay or pay-at-pump) are invoiced; a wallet top-up is a
prepayment and is never invoiced (the fuel bought with the wallet is). The amount of an order
is what the driver kept paying: the settled amount (pay-at-pump: what was pumped) less the
customer refunds that succeeded. Orders of one invoice share a seller; each order is on at most
one current blue invoice (`invoice_claims`); the seller's refined-oil quota is drawn down.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.auth.tokens import Principal
from forecourt.config import Settings
from forecourt.errors import FieldError, Unprocessable
from forecourt.invoice import domain, emails, repository, titles
from forecourt.invoice.domain import Goods, Kind, Status
from forecourt.invoice.errors import (
    InvoicePeriodOver,
    MixedSellers,
    NoTaxCode,
    OilQuotaExhausted,
    OrderAlreadyInvoiced,
    OrderNotInvoiceable,
    OrderNotPaid,
    OrderRefunded,
    RefundInProgress,
)
from forecourt.invoice.models import Invoice, InvoiceLine, InvoiceSeller
from forecourt.invoice.schemas import InvoiceLineOut, InvoiceOut, InvoiceRequestIn
from forecourt.kit import clock
from forecourt.kit.serials import ALPHABET
from forecourt.order import repository as order_repository
from forecourt.order.domain import Kind as OrderKind
from forecourt.order.domain import Status as OrderStatus
from forecourt.order.errors import OrderNotFound
from forecourt.order.models import Order

REQUESTED = "invoice.requested"  # outbox: {invoice_id} -> submit to the provider
STATUS_CHANGED = "invoice.status_changed"  # outbox: {invoice_id, invoice_no, kind, status, ...}
EMAIL_REQUESTED = "invoice.email_requested"  # outbox: {invoice_id, email (encrypted), on_issue}
API = "/api/v1"


def new_invoice_no(now: datetime) -> str:
    """Our request number (the provider's orderNo, at most 20): FC + yyMMdd + 12 letters."""
    return f"FC{clock.local(now):%y%m%d}" + "".join(secrets.choice(ALPHABET) for _ in range(12))


def announce(session: AsyncSession, invoice: Invoice) -> None:
    """Publish the invoice's new status (after the commit)."""
    outbox.publish(
        session,
        STATUS_CHANGED,
        {
            "invoice_id": invoice.id,
            "invoice_no": invoice.invoice_no,
            "kind": invoice.kind,
            "status": invoice.status,
            "member_id": invoice.member_id,
            "total_fen": invoice.total_fen,
            "invoice_number": invoice.invoice_number,
            "original_id": invoice.original_id,
            "replaces_id": invoice.replaces_id,
        },
    )


def move(session: AsyncSession, invoice: Invoice, status: Status, *, now: datetime) -> None:
    """Set a new status, stamp it and announce it."""
    invoice.status = status.value
    invoice.status_at = now
    announce(session, invoice)


def line_out(line: InvoiceLine) -> InvoiceLineOut:
    """One line for the API."""
    return InvoiceLineOut(
        order_id=line.order_id,
        goods_name=line.goods_name,
        tax_code=line.tax_code,
        unit=line.unit,
        quantity=domain.litres(line.volume_ml),
        unit_price=line.unit_price,
        amount_fen=line.amount_fen,
        net_fen=line.net_fen,
        tax_fen=line.tax_fen,
        tax_rate=domain.RATE,
    )


def has_document(invoice: Invoice) -> bool:
    """True once the provider issued it (a reversed blue keeps its document)."""
    return invoice.invoice_number is not None and invoice.status in (
        Status.ISSUED.value,
        Status.REVERSING.value,
        Status.REVERSED.value,
    )


def out(invoice: Invoice, lines: Sequence[InvoiceLine]) -> InvoiceOut:
    """The driver's view of an invoice."""
    return InvoiceOut(
        id=invoice.id,
        invoice_no=invoice.invoice_no,
        kind=invoice.kind,
        status=invoice.status,
        buyer_kind=invoice.buyer_kind,
        buyer_name=invoice.buyer_name,
        buyer_tax_id=invoice.buyer_tax_id,
        email=invoice.email_masked,
        seller_name=invoice.seller_name,
        seller_tax_id=invoice.seller_tax_id,
        total_fen=invoice.total_fen,
        net_fen=invoice.net_fen,
        tax_fen=invoice.tax_fen,
        volume_ml=invoice.volume_ml,
        lines=[line_out(line) for line in lines],
        invoice_number=invoice.invoice_number,
        original_id=invoice.original_id,
        replaces_id=invoice.replaces_id,
        failure=invoice.failure,
        created_at=invoice.created_at,
        status_at=invoice.status_at,
        issued_at=invoice.issued_at,
        emailed_at=invoice.emailed_at,
        pdf_url=f"{API}/invoices/{invoice.id}/pdf" if has_document(invoice) else None,
    )


# -- sellers ---------------------------------------------------------------------------------


async def default_seller(session: AsyncSession, settings: Settings) -> InvoiceSeller:
    """The seller from settings (its row and quota made on first use)."""
    return await repository.ensure_seller(
        session,
        tax_id=settings.invoice_seller_tax_id,
        name=settings.invoice_seller_name,
        address_phone=settings.invoice_seller_address,
        quota_ml=settings.invoice_seller_quota_litres * 1000,
    )


async def seller_of_stations(
    session: AsyncSession, station_ids: set[int], settings: Settings
) -> InvoiceSeller:
    """The one seller of these stations; 422 mixed_sellers when they sell for several."""
    assigned = await repository.station_sellers(session, sorted(station_ids))
    default = None
    if len(assigned) < len(station_ids):
        default = await default_seller(session, settings)
    ids = {assigned.get(s, default.id if default else 0) for s in station_ids}
    if len(ids) != 1:
        raise MixedSellers(
            "the orders were sold by different companies; request one invoice per seller",
            errors=[FieldError("order_ids", "orders of one seller only")],
        )
    seller = await repository.seller(session, ids.pop())
    assert seller is not None
    return seller


# -- what an order may be invoiced for ------------------------------------------------------


def check_order(
    order: Order,
    *,
    refunds: tuple[int, int],
    goods: dict[str, Goods],
    settings: Settings,
    now: datetime,
) -> int:
    """The invoiceable amount of one order; 409 (or 422) naming why it cannot be invoiced."""
    if order.kind == OrderKind.TOPUP.value:
        raise OrderNotInvoiceable(
            f"order {order.id} is a wallet top-up: a prepayment is not invoiced, "
            "the fuel bought with it is"
        )
    if order.status == OrderStatus.REFUNDED.value:
        raise OrderRefunded(f"order {order.id} was refunded")
    if order.status != OrderStatus.COMPLETED.value:
        raise OrderNotPaid(f"order {order.id} is {order.status}, not paid and settled")
    if order.completed_at and order.completed_at < now - timedelta(
        days=settings.invoice_period_days
    ):
        raise InvoicePeriodOver(
            f"order {order.id} is older than {settings.invoice_period_days} days"
        )
    succeeded, open_refunds = refunds
    if open_refunds:
        raise RefundInProgress(f"order {order.id} has a refund under way")
    if not order.volume_ml or order.station_id is None:
        raise OrderNotInvoiceable(f"order {order.id} has no fuel quantity")
    if order.grade_code not in goods:
        raise NoTaxCode(f"no tax code configured for grade {order.grade_code}")
    amount = domain.invoiceable_fen(
        settled_fen=order.settled_fen, paid_fen=order.paid_fen, refunded_after_fen=succeeded
    )
    if amount <= 0:
        raise OrderRefunded(f"order {order.id} has nothing left to invoice")
    return amount


def make_line(order: Order, *, line_no: int, amount_fen: int, goods: Goods) -> InvoiceLine:
    """An invoice line for an order's refined oil (amount split at 13 %)."""
    assert order.volume_ml is not None
    assert order.station_id is not None
    assert order.grade_code is not None
    parts = domain.split(amount_fen)
    return InvoiceLine(
        line_no=line_no,
        order_id=order.id,
        station_id=order.station_id,
        grade_code=order.grade_code,
        goods_name=goods.goods_name,
        tax_code=goods.tax_code,
        unit=domain.UNIT_LITRE,
        volume_ml=order.volume_ml,
        unit_price=domain.unit_price(amount_fen, order.volume_ml),
        amount_fen=parts.amount_fen,
        net_fen=parts.net_fen,
        tax_fen=parts.tax_fen,
    )


def blue_invoice(
    *,
    member_id: int,
    seller: InvoiceSeller,
    buyer: Invoice | titles.Buyer,
    lines: Sequence[InvoiceLine],
    data_key: bytes,
    now: datetime,
) -> Invoice:
    """A new blue invoice row (status requested) for the lines."""
    invoice = Invoice(
        invoice_no=new_invoice_no(now),
        kind=Kind.BLUE.value,
        status=Status.REQUESTED.value,
        member_id=member_id,
        seller_id=seller.id,
        seller_tax_id=seller.tax_id,
        seller_name=seller.name,
        seller_address=seller.address_phone,
        total_fen=sum(line.amount_fen for line in lines),
        net_fen=sum(line.net_fen for line in lines),
        tax_fen=sum(line.tax_fen for line in lines),
        volume_ml=sum(line.volume_ml for line in lines),
        provider="nuonuo",
        created_at=now,
        status_at=now,
    )
    if isinstance(buyer, Invoice):
        invoice.buyer_kind, invoice.buyer_name = buyer.buyer_kind, buyer.buyer_name
        invoice.buyer_tax_id = buyer.buyer_tax_id
        invoice.email_cipher, invoice.email_masked = buyer.email_cipher, buyer.email_masked
    else:
        invoice.buyer_kind, invoice.buyer_name, invoice.buyer_tax_id = (
            buyer.kind,
            buyer.name,
            buyer.tax_id,
        )
        if buyer.email:
            invoice.email_cipher = emails.encrypt(data_key, buyer.email)
            invoice.email_masked = emails.mask(buyer.email)
    return invoice


async def request_invoice(
    session: AsyncSession,
    *,
    principal: Principal,
    data: InvoiceRequestIn,
    settings: Settings,
    data_key: bytes,
    now: datetime,
) -> InvoiceOut:
    """Invoice the caller's paid orders of one seller; the provider is asked after the commit."""
    order_ids = sorted(set(data.order_ids))
    if len(order_ids) != len(data.order_ids) or len(order_ids) > settings.invoice_max_orders:
        raise Unprocessable(
            "bad order list",
            errors=[
                FieldError("order_ids", f"1-{settings.invoice_max_orders} distinct orders of yours")
            ],
        )
    buyer = await titles.buyer_for_request(
        session,
        principal=principal,
        title_id=data.title_id,
        title=data.title,
        email=data.email,
        data_key=data_key,
    )
    goods = domain.goods_table(settings.invoice_goods)
    orders: list[Order] = []
    for order_id in order_ids:  # locked in id order
        order = await order_repository.lock(session, order_id)
        if order is None or order.member_id != principal.id:
            raise OrderNotFound(f"no order {order_id}")
        orders.append(order)
    refunds = await repository.refund_state(session, order_ids)
    amounts = [
        check_order(o, refunds=refunds.get(o.id, (0, 0)), goods=goods, settings=settings, now=now)
        for o in orders
    ]
    claimed = await repository.claims(session, order_ids)
    if claimed:
        raise OrderAlreadyInvoiced(f"order {min(claimed)} already has an invoice")
    seller = await seller_of_stations(
        session, {o.station_id for o in orders if o.station_id is not None}, settings
    )
    lines = [
        make_line(o, line_no=i, amount_fen=amount, goods=goods[str(o.grade_code)])
        for i, (o, amount) in enumerate(zip(orders, amounts, strict=True), start=1)
    ]
    invoice = blue_invoice(
        member_id=principal.id, seller=seller, buyer=buyer, lines=lines, data_key=data_key, now=now
    )
    await repository.add_invoice(session, invoice, lines)
    if not await repository.claim(session, order_ids=order_ids, invoice_id=invoice.id):
        raise OrderAlreadyInvoiced("an order was invoiced meanwhile")
    outbox.publish(session, REQUESTED, {"invoice_id": invoice.id})
    announce(session, invoice)
    # Last: the seller's row is every request's hot spot, so hold its lock only to the commit.
    if not await repository.draw_quota(session, seller_id=seller.id, volume_ml=invoice.volume_ml):
        raise OilQuotaExhausted(
            f"the seller's refined-oil quota does not cover {domain.litres(invoice.volume_ml)} L"
        )
    return out(invoice, lines)
