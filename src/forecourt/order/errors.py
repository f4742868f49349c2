"""Errors of the order area (stable codes)."""

from __future__ import annotations

from forecourt.errors import Conflict, NotFound, Unprocessable


class OrderNotFound(NotFound):
    """No such order for this caller."""

    code, title = "order_not_found", "Order not found"


class OrderNotPayable(Conflict):
    """The order is not waiting for payment."""

    code, title = "order_not_payable", "Order not payable"


class OrderAlreadyPaid(Conflict):
    """The order has been paid."""

    code, title = "order_already_paid", "Order already paid"


class OrderExpired(Conflict):
    """The order ran out before it was paid."""

    code, title = "order_expired", "Order expired"


class NoPayableSale(Conflict):
    """The nozzle has no sale that may be paid now."""

    code, title = "no_payable_sale", "No payable sale on this nozzle"


class AmountAboveSale(Unprocessable):
    """The amount is above the nozzle's sale."""

    code, title = "amount_above_sale", "Amount above the sale"


class PresetAboveCap(Unprocessable):
    """The preset is above the allowed maximum."""

    code, title = "preset_above_cap", "Preset above the cap"


class PriceMissing(Conflict):
    """The station has no price for the nozzle's grade."""

    code, title = "price_missing", "No price for this grade"
