"""All SQL of the invoice area."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Exists, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import lock_row, upsert_insert
from forecourt.invoice.models import (
    Invoice,
    InvoiceClaim,
    InvoiceLine,
    InvoiceSeller,
    InvoiceTitle,
    StationSeller,
)
from forecourt.kit import clock
from forecourt.payment.models import Refund

# -- sellers and quota ----------------------------------------------------------------------


async def seller_by_tax_id(session: AsyncSession, tax_id: str) -> InvoiceSeller | None:
    """A seller by its tax id."""
    return (
        await session.scalars(select(InvoiceSeller).where(InvoiceSeller.tax_id == tax_id))
    ).one_or_none()


async def seller(session: AsyncSession, seller_id: int) -> InvoiceSeller | None:
    """A seller by id."""
    return await session.get(InvoiceSeller, seller_id)


async def add_seller(session: AsyncSession, row: InvoiceSeller) -> InvoiceSeller:
    """Insert a seller."""
    session.add(row)
    await session.flush()
    return row


async def ensure_seller(
    session: AsyncSession, *, tax_id: str, name: str, address_phone: str, quota_ml: int
) -> InvoiceSeller:
    """The seller with this tax id, inserted with these values when missing (race-safe)."""
    found = await seller_by_tax_id(session, tax_id)
    if found is not None:
        return found
    stmt = (
        upsert_insert(session, InvoiceSeller)
        .values(
            tax_id=tax_id,
            name=name,
            address_phone=address_phone,
            quota_ml=quota_ml,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=["tax_id"])
    )
    await session.execute(stmt)
    row = await seller_by_tax_id(session, tax_id)
    assert row is not None
    return row


async def sellers(session: AsyncSession) -> Sequence[InvoiceSeller]:
    """Every seller, by tax id."""
    return (await session.scalars(select(InvoiceSeller).order_by(InvoiceSeller.tax_id))).all()


async def station_seller_id(session: AsyncSession, station_id: int) -> int | None:
    """The seller a station is assigned to, if any."""
    stmt = select(StationSeller.seller_id).where(StationSeller.station_id == station_id)
    return (await session.scalars(stmt)).one_or_none()


async def station_sellers(session: AsyncSession, station_ids: Sequence[int]) -> dict[int, int]:
    """station id -> assigned seller id, for those that have one."""
    stmt = select(StationSeller).where(StationSeller.station_id.in_(station_ids))
    return {row.station_id: row.seller_id for row in (await session.scalars(stmt)).all()}


async def set_station_seller(session: AsyncSession, *, station_id: int, seller_id: int) -> None:
    """Assign a station to a seller."""
    row = await session.get(StationSeller, station_id)
    if row is None:
        session.add(StationSeller(station_id=station_id, seller_id=seller_id))
    else:
        row.seller_id = seller_id
    await session.flush()


async def stations_of_sellers(session: AsyncSession) -> dict[int, list[int]]:
    """seller id -> the stations assigned to it."""
    rows = (await session.execute(select(StationSeller.seller_id, StationSeller.station_id))).all()
    found: dict[int, list[int]] = {}
    for seller_id, station_id in sorted(rows):
        found.setdefault(seller_id, []).append(station_id)
    return found


async def draw_quota(session: AsyncSession, *, seller_id: int, volume_ml: int) -> bool:
    """Take refined oil off the seller's quota; False when it does not cover it."""
    stmt = (
        update(InvoiceSeller)
        .where(InvoiceSeller.id == seller_id, InvoiceSeller.quota_ml >= volume_ml)
        .values(quota_ml=InvoiceSeller.quota_ml - volume_ml, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def give_back_quota(session: AsyncSession, *, seller_id: int, volume_ml: int) -> None:
    """Return refined oil to the seller's quota (failed or reversed invoice)."""
    stmt = (
        update(InvoiceSeller)
        .where(InvoiceSeller.id == seller_id)
        .values(quota_ml=InvoiceSeller.quota_ml + volume_ml, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    await session.execute(stmt)


# -- titles ---------------------------------------------------------------------------------


async def titles_of(session: AsyncSession, member_id: int) -> Sequence[InvoiceTitle]:
    """A member's titles, the default first."""
    stmt = (
        select(InvoiceTitle)
        .where(InvoiceTitle.member_id == member_id)
        .order_by(InvoiceTitle.is_default.desc(), InvoiceTitle.id)
    )
    return (await session.scalars(stmt)).all()


async def title(session: AsyncSession, title_id: int) -> InvoiceTitle | None:
    """A title by id."""
    return await session.get(InvoiceTitle, title_id)


async def add_title(session: AsyncSession, row: InvoiceTitle) -> InvoiceTitle:
    """Insert a title."""
    session.add(row)
    await session.flush()
    return row


async def clear_default(session: AsyncSession, *, member_id: int, keep: int | None) -> None:
    """No title of the member is the default any more, except `keep`."""
    stmt = update(InvoiceTitle).where(
        InvoiceTitle.member_id == member_id, InvoiceTitle.is_default.is_(True)
    )
    if keep is not None:
        stmt = stmt.where(InvoiceTitle.id != keep)
    await session.execute(
        stmt.values(is_default=False).execution_options(synchronize_session=False)
    )


async def delete_title(session: AsyncSession, row: InvoiceTitle) -> None:
    """Delete a title (invoices keep their own copy of the buyer)."""
    await session.delete(row)
    await session.flush()


# -- invoices -------------------------------------------------------------------------------


async def add_invoice(
    session: AsyncSession, invoice: Invoice, lines: Sequence[InvoiceLine]
) -> Invoice:
    """Insert an invoice with its lines."""
    session.add(invoice)
    await session.flush()
    for line in lines:
        line.invoice_id = invoice.id
        session.add(line)
    await session.flush()
    return invoice


async def get(session: AsyncSession, invoice_id: int) -> Invoice | None:
    """An invoice by id."""
    return await session.get(Invoice, invoice_id)


async def lock(session: AsyncSession, invoice_id: int) -> Invoice | None:
    """An invoice under a row lock."""
    row: Invoice | None = await lock_row(session, Invoice, invoice_id)
    return row


async def by_invoice_no(session: AsyncSession, invoice_no: str) -> Invoice | None:
    """The invoice with our request number."""
    stmt = select(Invoice).where(Invoice.invoice_no == invoice_no)
    return (await session.scalars(stmt)).one_or_none()


async def lines_of(
    session: AsyncSession, invoice_ids: Sequence[int]
) -> dict[int, list[InvoiceLine]]:
    """invoice id -> its lines in order."""
    found: dict[int, list[InvoiceLine]] = {i: [] for i in invoice_ids}
    if not invoice_ids:
        return found
    stmt = (
        select(InvoiceLine)
        .where(InvoiceLine.invoice_id.in_(invoice_ids))
        .order_by(InvoiceLine.invoice_id, InvoiceLine.line_no)
    )
    for line in (await session.scalars(stmt)).all():
        found[line.invoice_id].append(line)
    return found


async def for_member(
    session: AsyncSession, *, member_id: int, before: int | None, limit: int
) -> Sequence[Invoice]:
    """A member's invoices, newest first (page with `before` = the last id)."""
    stmt = select(Invoice).where(Invoice.member_id == member_id)
    if before is not None:
        stmt = stmt.where(Invoice.id < before)
    return (await session.scalars(stmt.order_by(Invoice.id.desc()).limit(limit))).all()


def _at_stations(station_ids: Sequence[int]) -> Exists:
    return exists().where(
        InvoiceLine.invoice_id == Invoice.id, InvoiceLine.station_id.in_(station_ids)
    )


async def for_stations(
    session: AsyncSession,
    *,
    station_ids: Sequence[int] | None,
    status: str | None,
    before: int | None,
    limit: int,
) -> Sequence[Invoice]:
    """Invoices with a line of these stations (all when None), newest first."""
    stmt = select(Invoice)
    if station_ids is not None:
        stmt = stmt.where(_at_stations(station_ids))
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    if before is not None:
        stmt = stmt.where(Invoice.id < before)
    return (await session.scalars(stmt.order_by(Invoice.id.desc()).limit(limit))).all()


async def at_stations(session: AsyncSession, invoice_id: int, station_ids: Sequence[int]) -> bool:
    """True when the invoice has a line of one of these stations."""
    stmt = (
        select(func.count())
        .select_from(InvoiceLine)
        .where(InvoiceLine.invoice_id == invoice_id, InvoiceLine.station_id.in_(station_ids))
    )
    return bool(await session.scalar(stmt))


async def stale(
    session: AsyncSession, *, statuses: Sequence[str], before: datetime, limit: int
) -> Sequence[int]:
    """Ids of invoices in these states since before `before`, oldest first."""
    stmt = (
        select(Invoice.id)
        .where(Invoice.status.in_(statuses), Invoice.status_at < before)
        .order_by(Invoice.status_at)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


# -- claims: one current blue invoice per order -------------------------------------------


async def claims(session: AsyncSession, order_ids: Sequence[str]) -> dict[str, int]:
    """order id -> its current invoice id, for those that have one."""
    stmt = select(InvoiceClaim).where(InvoiceClaim.order_id.in_(order_ids))
    return {row.order_id: row.invoice_id for row in (await session.scalars(stmt)).all()}


async def claim(session: AsyncSession, *, order_ids: Sequence[str], invoice_id: int) -> bool:
    """Claim orders for an invoice; False when one was claimed meanwhile (nothing changes)."""
    for order_id in order_ids:
        stmt = (
            upsert_insert(session, InvoiceClaim)
            .values(order_id=order_id, invoice_id=invoice_id)
            .on_conflict_do_nothing(index_elements=["order_id"])
        )
        result = await session.execute(stmt)
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
    return True


async def move_claims(
    session: AsyncSession, *, order_ids: Sequence[str], from_id: int, to_id: int
) -> None:
    """Point the orders' claims from one invoice to its replacement."""
    stmt = (
        update(InvoiceClaim)
        .where(InvoiceClaim.order_id.in_(order_ids), InvoiceClaim.invoice_id == from_id)
        .values(invoice_id=to_id)
        .execution_options(synchronize_session=False)
    )
    await session.execute(stmt)


async def release(session: AsyncSession, invoice_id: int) -> None:
    """Drop the claims of an invoice that was not issued, so the orders may be invoiced again."""
    stmt = delete(InvoiceClaim).where(InvoiceClaim.invoice_id == invoice_id)
    await session.execute(stmt.execution_options(synchronize_session=False))


# -- refunds of the orders (read-only) ----------------------------------------------------


async def refund_state(
    session: AsyncSession, order_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """order id -> (succeeded customer refunds in fen, refunds still open), settlement excluded."""
    stmt = (
        select(Refund.order_id, Refund.status, func.sum(Refund.amount_fen), func.count())
        .where(Refund.order_id.in_(order_ids), Refund.kind != "settlement")
        .group_by(Refund.order_id, Refund.status)
    )
    found: dict[str, tuple[int, int]] = {}
    for order_id, status, amount, count in (await session.execute(stmt)).all():
        done, open_ = found.get(order_id, (0, 0))
        if status == "succeeded":
            done += int(amount or 0)
        elif status in ("processing", "pending_approval"):
            open_ += int(count)
        found[order_id] = (done, open_)
    return found
