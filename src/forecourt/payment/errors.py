"""Errors of the payment area (stable codes)."""

from __future__ import annotations

from forecourt.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable


class InsufficientBalance(Conflict):
    """The wallet balance does not cover the amount."""

    code, title = "insufficient_balance", "Wallet balance too low"


class ProviderUnavailable(ServiceUnavailable):
    """The payment provider could not be reached or failed; try again."""

    code, title = "provider_unavailable", "Payment provider unavailable"


class ProviderRejected(Unprocessable):
    """The payment provider refused the request as it was."""

    code, title = "provider_rejected", "Payment provider refused the request"


class PayerUnknown(Unprocessable):
    """The channel needs the payer's account id (e.g. a WeChat openid) we do not have."""

    code, title = "payer_unknown", "Payer account unknown for this channel"


class RefundTooLarge(Unprocessable):
    """The refund is above what is left to refund."""

    code, title = "refund_exceeds_paid", "Refund above the refundable amount"


class RefundNotAllowed(Conflict):
    """The order is not in a state that can be refunded."""

    code, title = "refund_not_allowed", "Refund not allowed"


class RefundNotFound(NotFound):
    """No such refund in the caller's scope."""

    code, title = "refund_not_found", "Refund not found"


class RefundNotPending(Conflict):
    """The refund is not waiting for approval."""

    code, title = "refund_not_pending", "Refund not awaiting approval"


class SelfApproval(Conflict):
    """The requester may not approve their own refund."""

    code, title = "self_approval", "Refund needs another person's approval"
