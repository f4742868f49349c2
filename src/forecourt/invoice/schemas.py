"""Request and response models of the invoice area."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TaxIdCheckOut(BaseModel):
    """Whether a Unified Social Credit Code is valid, and if not, why."""

    valid: bool
    reason: str | None


class TitleIn(BaseModel):
    """A buyer title: a company (name + tax id) or a person (name only)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["company", "personal"]
    name: str = Field(min_length=1, max_length=100)
    tax_id: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=120)
    is_default: bool = False


class TitleOut(BaseModel):
    """A saved title as its owner sees it."""

    id: int
    kind: str
    name: str
    tax_id: str | None
    email: str | None
    is_default: bool
    created_at: datetime


class InvoiceRequestIn(BaseModel):
    """Invoice one or several paid fuel orders of the same seller."""

    model_config = ConfigDict(extra="forbid")

    order_ids: list[str] = Field(min_length=1, max_length=200)
    title_id: int | None = Field(default=None, gt=0, description="a saved title")
    title: TitleIn | None = Field(default=None, description="or a one-off title (not saved)")
    email: str | None = Field(
        default=None, max_length=120, description="send the PDF here (default: the title's)"
    )


class EmailIn(BaseModel):
    """Send an issued invoice again, to the given or the stored address."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=120)


class InvoiceLineOut(BaseModel):
    """One line: the refined oil of one order."""

    order_id: str
    goods_name: str
    tax_code: str
    unit: str
    quantity: str  # litres, three decimals
    unit_price: str  # tax-inclusive yuan per litre
    amount_fen: int
    net_fen: int
    tax_fen: int
    tax_rate: str


class InvoiceOut(BaseModel):
    """An invoice as its driver sees it (the e-mail masked)."""

    id: int
    invoice_no: str
    kind: str
    status: str
    buyer_kind: str
    buyer_name: str
    buyer_tax_id: str | None
    email: str | None
    seller_name: str
    seller_tax_id: str
    total_fen: int
    net_fen: int
    tax_fen: int
    volume_ml: int
    lines: list[InvoiceLineOut]
    invoice_number: str | None
    original_id: int | None
    replaces_id: int | None
    failure: str | None
    created_at: datetime
    status_at: datetime
    issued_at: datetime | None
    emailed_at: datetime | None
    pdf_url: str | None


class InvoiceList(BaseModel):
    """A page of invoices."""

    items: list[InvoiceOut]
    next_before: int | None


class StaffInvoiceOut(InvoiceOut):
    """An invoice as station staff see it."""

    member_id: int


class SellerIn(BaseModel):
    """A seller (operating company) and its refined-oil quota."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    address_phone: str = Field(default="", max_length=200)
    quota_litres: int = Field(ge=0, le=10**12)


class SellerOut(BaseModel):
    """A seller with its remaining quota."""

    id: int
    tax_id: str
    name: str
    address_phone: str
    quota_ml: int
    station_ids: list[int]


class StationSellerIn(BaseModel):
    """Which seller a station invoices for."""

    model_config = ConfigDict(extra="forbid")

    seller_tax_id: str = Field(max_length=40)
