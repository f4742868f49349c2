"""Reading invoices (scoped), their PDF, e-mailing them, and the sellers of the back office."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.auth.tokens import Principal
from forecourt.config import Settings
from forecourt.invoice import domain, emails, mail, pdf, repository, service, taxid
from forecourt.invoice.domain import Kind
from forecourt.invoice.errors import (
    InvalidTaxId,
    InvoiceNotFound,
    InvoiceNotIssued,
    NoEmail,
    SellerNotFound,
)
from forecourt.invoice.models import Invoice, InvoiceLine, InvoiceSeller
from forecourt.invoice.schemas import (
    InvoiceList,
    InvoiceOut,
    SellerIn,
    SellerOut,
    StaffInvoiceOut,
)
from forecourt.kit.scope import require_station

# -- reads -----------------------------------------------------------------------------------


async def member_invoice(
    session: AsyncSession, *, principal: Principal, invoice_id: int
) -> Invoice:
    """The caller's own invoice (404 for anyone else's)."""
    invoice = await repository.get(session, invoice_id)
    if invoice is None or invoice.member_id != principal.id:
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    return invoice


async def staff_invoice(session: AsyncSession, *, principal: Principal, invoice_id: int) -> Invoice:
    """An invoice with a line of a station in the staff member's scope (404 otherwise)."""
    invoice = await repository.get(session, invoice_id)
    if invoice is None:
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    if principal.role != "hq_admin" and not await repository.at_stations(
        session, invoice.id, sorted(principal.station_ids)
    ):
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    return invoice


async def views(session: AsyncSession, rows: Sequence[Invoice]) -> list[InvoiceOut]:
    """Invoices with their lines."""
    lines = await repository.lines_of(session, [row.id for row in rows])
    return [service.out(row, lines[row.id]) for row in rows]


async def staff_views(session: AsyncSession, rows: Sequence[Invoice]) -> list[StaffInvoiceOut]:
    """Invoices with their lines and the driver's id."""
    return [
        StaffInvoiceOut(**view.model_dump(), member_id=row.member_id)
        for row, view in zip(rows, await views(session, rows), strict=True)
    ]


async def list_for_member(
    session: AsyncSession, *, principal: Principal, before: int | None, limit: int
) -> InvoiceList:
    """A page of the caller's invoices, newest first."""
    rows = await repository.for_member(session, member_id=principal.id, before=before, limit=limit)
    items = await views(session, rows)
    return InvoiceList(items=items, next_before=items[-1].id if len(items) == limit else None)


async def list_for_staff(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int | None,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[StaffInvoiceOut]:
    """Invoices of a station (or of all the caller's stations), newest first."""
    if station_id is not None:
        require_station(principal, station_id)
        scope: list[int] | None = [station_id]
    else:
        scope = None if principal.role == "hq_admin" else sorted(principal.station_ids)
    rows = await repository.for_stations(
        session, station_ids=scope, status=status, before=before, limit=limit
    )
    return await staff_views(session, rows)


# -- the document ----------------------------------------------------------------------------


async def document(session: AsyncSession, invoice: Invoice, settings: Settings) -> pdf.Document:
    """What the PDF prints; 409 invoice_not_issued before the provider issued it."""
    if not service.has_document(invoice):
        raise InvoiceNotIssued(f"invoice {invoice.invoice_no} is {invoice.status}")
    assert invoice.invoice_number is not None
    assert invoice.issued_at is not None
    lines: list[InvoiceLine] = (await repository.lines_of(session, [invoice.id]))[invoice.id]
    remark = f"订单：{'、'.join(line.order_id for line in lines[:3])}"
    remark += f" 等{len(lines)}笔" if len(lines) > 3 else ""
    if invoice.kind == Kind.RED.value and invoice.original_id is not None:
        original = await repository.get(session, invoice.original_id)
        remark = f"被红冲蓝字数电发票号码：{original.invoice_number if original else ''}"
    return pdf.Document(
        number=invoice.invoice_number,
        issued_at=invoice.issued_at,
        red=invoice.kind == Kind.RED.value,
        buyer_name=invoice.buyer_name,
        buyer_tax_id=invoice.buyer_tax_id,
        seller_name=invoice.seller_name,
        seller_tax_id=invoice.seller_tax_id,
        lines=tuple(
            pdf.DocLine(
                goods_name=line.goods_name,
                spec="",
                unit=line.unit,
                quantity=domain.litres(line.volume_ml),
                unit_price=line.unit_price,
                net_fen=line.net_fen,
                rate=f"{domain.RATE_PCT}%",
                tax_fen=line.tax_fen,
            )
            for line in lines
        ),
        net_fen=invoice.net_fen,
        tax_fen=invoice.tax_fen,
        total_fen=invoice.total_fen,
        remark=remark,
        clerk=settings.invoice_clerk,
        qr_content=invoice.qr_content,
    )


async def pdf_bytes(session: AsyncSession, invoice: Invoice, settings: Settings) -> bytes:
    """The rendered PDF of an issued invoice."""
    return pdf.render(await document(session, invoice, settings))


def request_email(
    session: AsyncSession, invoice: Invoice, *, email: str | None, data_key: bytes
) -> None:
    """Queue sending the PDF (to `email`, else the invoice's address); 422 no_email."""
    if not service.has_document(invoice):
        raise InvoiceNotIssued(f"invoice {invoice.invoice_no} is {invoice.status}")
    if email is None and invoice.email_cipher is None:
        raise NoEmail("the invoice has no e-mail address: give one")
    cipher = emails.encrypt(data_key, email) if email else None
    payload: dict[str, object] = {"invoice_id": invoice.id}
    if cipher is not None:
        payload["email"] = base64.b64encode(cipher).decode()
    outbox.publish(session, service.EMAIL_REQUESTED, payload)


async def send_email(
    session: AsyncSession,
    *,
    invoice_id: int,
    to_cipher: bytes | None,
    settings: Settings,
    data_key: bytes,
    now: datetime,
) -> bool:
    """Render and send an issued invoice; True when sent (safe to repeat: Message-ID)."""
    invoice = await repository.get(session, invoice_id)
    if invoice is None or not service.has_document(invoice):
        return False
    cipher = to_cipher or invoice.email_cipher
    if cipher is None:
        return False
    original = None
    if invoice.original_id is not None:
        blue = await repository.get(session, invoice.original_id)
        original = blue.invoice_number if blue else None
    assert invoice.invoice_number is not None
    msg = mail.message(
        sender=settings.smtp_from,
        to=emails.decrypt(data_key, cipher),
        number=invoice.invoice_number,
        seller_name=invoice.seller_name,
        total_fen=invoice.total_fen,
        red=invoice.kind == Kind.RED.value,
        pdf=await pdf_bytes(session, invoice, settings),
        original_number=original,
    )
    if not await mail.send(settings, msg):
        return False
    invoice.emailed_at = now
    return True


# -- sellers (head office) ---------------------------------------------------------------


def _seller_out(row: InvoiceSeller, stations: dict[int, list[int]]) -> SellerOut:
    return SellerOut(
        id=row.id,
        tax_id=row.tax_id,
        name=row.name,
        address_phone=row.address_phone,
        quota_ml=row.quota_ml,
        station_ids=stations.get(row.id, []),
    )


def _tax_id_or_422(raw: str, field: str) -> str:
    code = taxid.normalize(raw)
    check = taxid.validate(code)
    if not check.valid:
        raise InvalidTaxId.of(check, field)
    return code


async def list_sellers(session: AsyncSession, settings: Settings) -> list[SellerOut]:
    """Every seller with its quota (the default one included)."""
    await service.default_seller(session, settings)
    stations = await repository.stations_of_sellers(session)
    return [_seller_out(row, stations) for row in await repository.sellers(session)]


async def put_seller(
    session: AsyncSession, *, tax_id: str, data: SellerIn, now: datetime
) -> SellerOut:
    """Create or update a seller and set its remaining refined-oil quota."""
    code = _tax_id_or_422(tax_id, "tax_id")
    row = await repository.seller_by_tax_id(session, code)
    if row is None:
        row = await repository.add_seller(
            session,
            InvoiceSeller(tax_id=code, name=data.name, quota_ml=0, created_at=now, updated_at=now),
        )
    row.name, row.address_phone = data.name, data.address_phone
    row.quota_ml, row.updated_at = data.quota_litres * 1000, now
    await session.flush()
    return _seller_out(row, await repository.stations_of_sellers(session))


async def assign_station(
    session: AsyncSession, *, station_id: int, seller_tax_id: str, settings: Settings
) -> SellerOut:
    """Make a station invoice as this seller."""
    from forecourt.station import repository as station_repository

    if await station_repository.get(session, station_id) is None:
        raise InvoiceNotFound(f"station {station_id} not found")
    code = _tax_id_or_422(seller_tax_id, "seller_tax_id")
    row = await repository.seller_by_tax_id(session, code)
    if row is None:
        raise SellerNotFound(f"no seller {code}")
    await repository.set_station_seller(session, station_id=station_id, seller_id=row.id)
    return _seller_out(row, await repository.stations_of_sellers(session))
