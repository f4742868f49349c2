"""Asynchronous notification delivery with UnionPay's resend schedule.

UnionPay POSTs the form to backUrl and stops on HTTP 200 (whatever the body); otherwise it
resends after 1m, 2m, 4m, 8m and 16m (five resends; here multiplied by `scale`).
"""

from __future__ import annotations

from forecourt.integrations.form_notifier import DeliveryAttempt, FormNotifier

__all__ = ["RESEND_AFTER_SECONDS", "DeliveryAttempt", "notifier"]

RESEND_AFTER_SECONDS = (60.0, 120.0, 240.0, 480.0, 960.0)


def notifier(*, scale: float = 1.0, timeout: float = 10.0) -> FormNotifier:
    """UnionPay's notifier: any HTTP 200 is an acknowledgement."""
    return FormNotifier(
        vendor="unionpay",
        resend_after=RESEND_AFTER_SECONDS,
        acked=lambda status, body: status == 200,
        event_id=lambda fields: f"{fields.get('queryId', '')}-{fields.get('txnType', '')}",
        scale=scale,
        timeout=timeout,
    )
