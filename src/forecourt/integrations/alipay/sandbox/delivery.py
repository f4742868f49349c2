"""Asynchronous notification delivery with Alipay's resend schedule.

Alipay POSTs the form to notify_url and stops only when the body is exactly `success`;
otherwise it resends after 4m, 10m, 10m, 1h, 2h, 6h and 15h (here multiplied by `scale`).
"""

from __future__ import annotations

from forecourt.integrations.form_notifier import DeliveryAttempt, FormNotifier

__all__ = ["ACK", "RESEND_AFTER_SECONDS", "DeliveryAttempt", "notifier"]

RESEND_AFTER_SECONDS = (240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)
ACK = "success"


def notifier(*, scale: float = 1.0, timeout: float = 10.0) -> FormNotifier:
    """Alipay's notifier: acknowledged by the exact body `success`."""
    return FormNotifier(
        vendor="alipay",
        resend_after=RESEND_AFTER_SECONDS,
        acked=lambda status, body: status == 200 and body.strip() == ACK,
        event_id=lambda fields: fields.get("notify_id", ""),
        scale=scale,
        timeout=timeout,
    )
