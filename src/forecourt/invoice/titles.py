"""Buyer titles (发票抬头) a driver saves, and the tax-id check the app calls while typing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import FieldError, Unprocessable
from forecourt.invoice import emails, repository, taxid
from forecourt.invoice.errors import InvalidEmail, InvalidTaxId, TitleNotFound
from forecourt.invoice.models import InvoiceTitle
from forecourt.invoice.schemas import TaxIdCheckOut, TitleIn, TitleOut

MAX_TITLES = 20


@dataclass(frozen=True, slots=True)
class Buyer:
    """Who an invoice is made out to (the e-mail in clear, only in memory)."""

    kind: str
    name: str
    tax_id: str | None
    email: str | None


def check_tax_id(code: str) -> TaxIdCheckOut:
    """The app's live check: valid, or the failing check and why."""
    result = taxid.validate(taxid.normalize(code))
    return TaxIdCheckOut(
        valid=result.valid, reason=None if result.valid else f"{result.check}: {result.reason}"
    )


def email_or_422(raw: str | None, field: str = "email") -> str | None:
    """A normalised address, None for none given; 422 invalid_email otherwise."""
    if raw is None or not raw.strip():
        return None
    email = emails.normalize(raw)
    if email is None:
        raise InvalidEmail("not an e-mail address", errors=[FieldError(field, "not an address")])
    return email


def buyer_of(data: TitleIn, field: str = "") -> Buyer:
    """Validate a title: a company needs a valid tax id, a person has none."""
    name = data.name.strip()
    if not name:
        raise Unprocessable("empty name", errors=[FieldError(f"{field}name", "must not be blank")])
    email = email_or_422(data.email, f"{field}email")
    if data.kind == "personal":
        if data.tax_id:
            raise Unprocessable(
                "a personal title has no tax id",
                errors=[FieldError(f"{field}tax_id", "must be empty for a personal title")],
            )
        return Buyer("personal", name, None, email)
    code = taxid.normalize(data.tax_id or "")
    result = taxid.validate(code)
    if not result.valid:
        raise InvalidTaxId.of(result, f"{field}tax_id")
    return Buyer("company", name, code, email)


def out(row: InvoiceTitle, data_key: bytes) -> TitleOut:
    """The owner's view of a title (the e-mail in clear: they typed it)."""
    return TitleOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        tax_id=row.tax_id,
        email=emails.decrypt(data_key, row.email_cipher) if row.email_cipher else None,
        is_default=row.is_default,
        created_at=row.created_at,
    )


def _apply(row: InvoiceTitle, buyer: Buyer, data_key: bytes) -> None:
    row.kind, row.name, row.tax_id = buyer.kind, buyer.name, buyer.tax_id
    row.email_cipher = emails.encrypt(data_key, buyer.email) if buyer.email else None
    row.email_masked = emails.mask(buyer.email) if buyer.email else None


async def list_titles(
    session: AsyncSession, *, principal: Principal, data_key: bytes
) -> list[TitleOut]:
    """The caller's titles, the default first."""
    return [out(row, data_key) for row in await repository.titles_of(session, principal.id)]


async def member_title(
    session: AsyncSession, *, principal: Principal, title_id: int
) -> InvoiceTitle:
    """The caller's own title (404 for anyone else's)."""
    row = await repository.title(session, title_id)
    if row is None or row.member_id != principal.id:
        raise TitleNotFound(f"no invoice title {title_id}")
    return row


async def create_title(
    session: AsyncSession, *, principal: Principal, data: TitleIn, data_key: bytes, now: datetime
) -> TitleOut:
    """Save a title; the first one (or one marked so) becomes the default."""
    buyer = buyer_of(data)
    existing: Sequence[InvoiceTitle] = await repository.titles_of(session, principal.id)
    if len(existing) >= MAX_TITLES:
        raise Unprocessable(f"at most {MAX_TITLES} titles", errors=[FieldError("body", "too many")])
    row = InvoiceTitle(
        member_id=principal.id,
        is_default=data.is_default or not existing,
        created_at=now,
        updated_at=now,
    )
    _apply(row, buyer, data_key)
    await repository.add_title(session, row)
    if row.is_default:
        await repository.clear_default(session, member_id=principal.id, keep=row.id)
    return out(row, data_key)


async def update_title(
    session: AsyncSession,
    *,
    principal: Principal,
    title_id: int,
    data: TitleIn,
    data_key: bytes,
    now: datetime,
) -> TitleOut:
    """Replace a title's fields (issued invoices keep their own copy)."""
    row = await member_title(session, principal=principal, title_id=title_id)
    _apply(row, buyer_of(data), data_key)
    row.updated_at = now
    if data.is_default:
        row.is_default = True
        await repository.clear_default(session, member_id=principal.id, keep=row.id)
    await session.flush()
    return out(row, data_key)


async def delete_title(session: AsyncSession, *, principal: Principal, title_id: int) -> None:
    """Forget a title."""
    row = await member_title(session, principal=principal, title_id=title_id)
    await repository.delete_title(session, row)


async def buyer_for_request(
    session: AsyncSession,
    *,
    principal: Principal,
    title_id: int | None,
    title: TitleIn | None,
    email: str | None,
    data_key: bytes,
) -> Buyer:
    """The buyer of a request: a saved title or a one-off one; the e-mail override wins."""
    if (title_id is None) == (title is None):
        raise Unprocessable(
            "give a saved title or a one-off title",
            errors=[FieldError("title_id", "exactly one of title_id and title is required")],
        )
    override = email_or_422(email)
    if title is not None:
        buyer = buyer_of(title, "title.")
    else:
        assert title_id is not None
        row = await member_title(session, principal=principal, title_id=title_id)
        saved = emails.decrypt(data_key, row.email_cipher) if row.email_cipher else None
        buyer = Buyer(row.kind, row.name, row.tax_id, saved)
    return Buyer(buyer.kind, buyer.name, buyer.tax_id, override or buyer.email)
