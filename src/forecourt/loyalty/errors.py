"""Errors of the loyalty area (stable codes)."""

from __future__ import annotations

from forecourt.errors import Conflict, NotFound, Unprocessable


class MemberNotFound(NotFound):
    """No such member."""

    code, title = "member_not_found", "Member not found"


class InsufficientPoints(Conflict):
    """The points balance does not cover the redemption or deduction."""

    code, title = "insufficient_points", "Not enough points"


class OutOfStock(Conflict):
    """The mall item has not enough stock left."""

    code, title = "out_of_stock", "Out of stock"


class LimitReached(Conflict):
    """The member has redeemed this item as often as allowed this month."""

    code, title = "redemption_limit_reached", "Redemption limit reached"


class ItemNotFound(NotFound):
    """No such (active) mall item."""

    code, title = "mall_item_not_found", "Mall item not found"


class RedemptionNotFound(NotFound):
    """No such redemption for this caller."""

    code, title = "redemption_not_found", "Redemption not found"


class RedemptionClosed(Conflict):
    """The redemption was already picked up or cancelled."""

    code, title = "redemption_closed", "Redemption already closed"


class BadTierConfig(Unprocessable):
    """The tier configuration is inconsistent."""

    code, title = "bad_tier_config", "Bad tier configuration"
