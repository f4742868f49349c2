"""Errors of the invoice area (stable codes)."""

from __future__ import annotations

from forecourt.errors import Conflict, FieldError, NotFound, ServiceUnavailable, Unprocessable
from forecourt.invoice.taxid import TaxIdCheck


class InvalidTaxId(Unprocessable):
    """A tax id that fails a GB 32100-2015 check."""

    code, title = "invalid_tax_id", "Invalid tax id"

    @classmethod
    def of(cls, check: TaxIdCheck, field: str = "tax_id") -> InvalidTaxId:
        """The error naming the failing check and why."""
        return cls(
            f"tax id fails the {check.check} check: {check.reason}",
            errors=[FieldError(field, f"{check.check}: {check.reason}")],
        )


class InvalidEmail(Unprocessable):
    """Not an e-mail address."""

    code, title = "invalid_email", "Invalid e-mail address"


class TitleNotFound(NotFound):
    """No such invoice title for this driver."""

    code, title = "invoice_title_not_found", "Invoice title not found"


class InvoiceNotFound(NotFound):
    """No such invoice for this caller."""

    code, title = "invoice_not_found", "Invoice not found"


class SellerNotFound(NotFound):
    """No such seller."""

    code, title = "invoice_seller_not_found", "Invoice seller not found"


class OrderNotInvoiceable(Conflict):
    """The order cannot be invoiced (top-up, no fuel quantity, nothing left to invoice)."""

    code, title = "order_not_invoiceable", "Order not invoiceable"


class OrderNotPaid(Conflict):
    """The order has not been paid and settled."""

    code, title = "order_not_paid", "Order not paid"


class OrderRefunded(Conflict):
    """The order has been refunded."""

    code, title = "order_refunded", "Order refunded"


class OrderAlreadyInvoiced(Conflict):
    """The order already has an invoice (issued or under way)."""

    code, title = "order_already_invoiced", "Order already invoiced"


class RefundInProgress(Conflict):
    """A refund of the order is under way: invoice once it is decided."""

    code, title = "refund_in_progress", "Refund in progress"


class InvoicePeriodOver(Conflict):
    """The order is older than the invoicing period."""

    code, title = "invoice_period_over", "Invoicing period over"


class MixedSellers(Unprocessable):
    """The orders were sold by different companies."""

    code, title = "mixed_sellers", "Orders of different sellers"


class OilQuotaExhausted(Conflict):
    """The seller's refined-oil quota does not cover the quantity."""

    code, title = "oil_quota_exhausted", "Refined-oil quota exhausted"


class NoTaxCode(Conflict):
    """No tax code is configured for the order's grade."""

    code, title = "no_tax_code", "No tax code for this grade"


class InvoiceNotIssued(Conflict):
    """The invoice has no document yet."""

    code, title = "invoice_not_issued", "Invoice not issued"


class NoEmail(Unprocessable):
    """No address to send the invoice to."""

    code, title = "no_email", "No e-mail address"


class InvoiceProviderUnavailable(ServiceUnavailable):
    """The invoice provider could not be asked."""

    code, title = "invoice_provider_unavailable", "Invoice provider unavailable"
