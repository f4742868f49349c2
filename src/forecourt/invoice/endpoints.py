"""HTTP routes of invoices: titles and requests for drivers, views for staff, the callback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from forecourt.deps import AnyStaff, HqAdmin, Member, Public, ReadSession, RuntimeDep, Session
from forecourt.invoice import documents, issuing, service, titles
from forecourt.invoice.schemas import (
    EmailIn,
    InvoiceList,
    InvoiceOut,
    InvoiceRequestIn,
    SellerIn,
    SellerOut,
    StaffInvoiceOut,
    StationSellerIn,
    TaxIdCheckOut,
    TitleIn,
    TitleOut,
)
from forecourt.kit import clock
from forecourt.payment import idempotency

router = APIRouter(tags=["invoices"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
PDF = "application/pdf"


def _pdf(body: bytes, number: str | None) -> Response:
    return Response(
        body,
        media_type=PDF,
        headers={"Content-Disposition": f'inline; filename="{number or "invoice"}.pdf"'},
    )


# -- the app ---------------------------------------------------------------------------------


@router.get("/invoices/tax-id/{code}", response_model=TaxIdCheckOut, dependencies=[Public])
async def check_tax_id(code: Annotated[str, Path(max_length=40)]) -> TaxIdCheckOut:
    """Validate a Unified Social Credit Code (GB 32100-2015) while the driver types it."""
    return titles.check_tax_id(code)


@router.get("/invoice-titles", response_model=list[TitleOut])
async def my_titles(session: ReadSession, runtime: RuntimeDep, principal: Member) -> list[TitleOut]:
    """The caller's saved buyer titles, the default first."""
    return await titles.list_titles(session, principal=principal, data_key=runtime.secrets.data_key)


@router.post("/invoice-titles", response_model=TitleOut, status_code=status.HTTP_201_CREATED)
async def create_title(
    session: Session, runtime: RuntimeDep, principal: Member, body: TitleIn
) -> TitleOut:
    """Save a company (name + tax id) or personal title, with an optional e-mail."""
    return await titles.create_title(
        session, principal=principal, data=body, data_key=runtime.secrets.data_key, now=clock.now()
    )


@router.put("/invoice-titles/{title_id}", response_model=TitleOut)
async def update_title(
    session: Session, runtime: RuntimeDep, principal: Member, title_id: int, body: TitleIn
) -> TitleOut:
    """Change a saved title."""
    return await titles.update_title(
        session,
        principal=principal,
        title_id=title_id,
        data=body,
        data_key=runtime.secrets.data_key,
        now=clock.now(),
    )


@router.delete("/invoice-titles/{title_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_title(session: Session, principal: Member, title_id: int) -> Response:
    """Forget a saved title."""
    await titles.delete_title(session, principal=principal, title_id=title_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invoices", response_model=InvoiceOut, status_code=status.HTTP_201_CREATED)
async def request_invoice(
    session: Session,
    runtime: RuntimeDep,
    principal: Member,
    body: InvoiceRequestIn,
    idempotency_key: IdempotencyKey = None,
) -> InvoiceOut:
    """Invoice paid fuel orders of one seller; issued asynchronously (poll or watch status)."""

    async def work() -> InvoiceOut:
        return await service.request_invoice(
            session,
            principal=principal,
            data=body,
            settings=runtime.settings,
            data_key=runtime.secrets.data_key,
            now=clock.now(),
        )

    return await idempotency.run(
        session,
        subject=principal.subject,
        route="invoices.request",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=InvoiceOut,
        work=work,
    )


@router.get("/invoices", response_model=InvoiceList)
async def my_invoices(
    session: ReadSession,
    principal: Member,
    before: int | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> InvoiceList:
    """The caller's invoices, newest first (page with `before` = the last id)."""
    return await documents.list_for_member(session, principal=principal, before=before, limit=limit)


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut)
async def my_invoice(session: ReadSession, principal: Member, invoice_id: int) -> InvoiceOut:
    """One of the caller's invoices."""
    invoice = await documents.member_invoice(session, principal=principal, invoice_id=invoice_id)
    return (await documents.views(session, [invoice]))[0]


@router.get("/invoices/{invoice_id}/pdf", response_class=Response)
async def my_invoice_pdf(
    session: ReadSession, runtime: RuntimeDep, principal: Member, invoice_id: int
) -> Response:
    """The PDF of one of the caller's issued invoices."""
    invoice = await documents.member_invoice(session, principal=principal, invoice_id=invoice_id)
    body = await documents.pdf_bytes(session, invoice, runtime.settings)
    return _pdf(body, invoice.invoice_number)


@router.post("/invoices/{invoice_id}/email", status_code=status.HTTP_202_ACCEPTED)
async def email_invoice(
    session: Session, runtime: RuntimeDep, principal: Member, invoice_id: int, body: EmailIn
) -> Response:
    """Send the PDF again, to the given address or the invoice's."""
    invoice = await documents.member_invoice(session, principal=principal, invoice_id=invoice_id)
    documents.request_email(
        session,
        invoice,
        email=titles.email_or_422(body.email),
        data_key=runtime.secrets.data_key,
    )
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post("/invoices/notify/nuonuo", dependencies=[Public], include_in_schema=False)
async def nuonuo_callback(session: Session, runtime: RuntimeDep, request: Request) -> Response:
    """The provider's result callback (confirmed by a query; repeats are acknowledged)."""
    ack = await issuing.handle_callback(
        session,
        headers=dict(request.headers),
        body=await request.body(),
        invoicing=runtime.invoicing,
        settings=runtime.settings,
        now=clock.now(),
    )
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


# -- the back office ---------------------------------------------------------------------


@router.get("/admin/invoices", response_model=list[StaffInvoiceOut])
async def staff_invoices(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int | None = None,
    invoice_status: Annotated[str | None, Query(alias="status", max_length=10)] = None,
    before: int | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[StaffInvoiceOut]:
    """Invoices of the caller's stations (or one of them), newest first."""
    return await documents.list_for_staff(
        session,
        principal=principal,
        station_id=station_id,
        status=invoice_status,
        before=before,
        limit=limit,
    )


@router.get("/admin/invoices/{invoice_id}", response_model=StaffInvoiceOut)
async def staff_invoice(
    session: ReadSession, principal: AnyStaff, invoice_id: int
) -> StaffInvoiceOut:
    """One invoice of a station in the caller's scope."""
    invoice = await documents.staff_invoice(session, principal=principal, invoice_id=invoice_id)
    return (await documents.staff_views(session, [invoice]))[0]


@router.get("/admin/invoices/{invoice_id}/pdf", response_class=Response)
async def staff_invoice_pdf(
    session: ReadSession, runtime: RuntimeDep, principal: AnyStaff, invoice_id: int
) -> Response:
    """The PDF of an issued invoice of a station in the caller's scope."""
    invoice = await documents.staff_invoice(session, principal=principal, invoice_id=invoice_id)
    body = await documents.pdf_bytes(session, invoice, runtime.settings)
    return _pdf(body, invoice.invoice_number)


@router.get("/admin/invoice-sellers", response_model=list[SellerOut])
async def sellers(session: Session, runtime: RuntimeDep, principal: HqAdmin) -> list[SellerOut]:
    """The sellers (operating companies) with their remaining refined-oil quota."""
    return await documents.list_sellers(session, runtime.settings)


@router.put("/admin/invoice-sellers/{tax_id}", response_model=SellerOut)
async def put_seller(
    session: Session, principal: HqAdmin, tax_id: str, body: SellerIn
) -> SellerOut:
    """Create or update a seller and set its remaining refined-oil quota."""
    return await documents.put_seller(session, tax_id=tax_id, data=body, now=clock.now())


@router.put("/admin/stations/{station_id}/invoice-seller", response_model=SellerOut)
async def assign_seller(
    session: Session,
    runtime: RuntimeDep,
    principal: HqAdmin,
    station_id: int,
    body: StationSellerIn,
) -> SellerOut:
    """Make a station invoice as a seller."""
    return await documents.assign_station(
        session, station_id=station_id, seller_tax_id=body.seller_tax_id, settings=runtime.settings
    )
