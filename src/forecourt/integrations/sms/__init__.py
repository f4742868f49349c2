"""SMS gateway: client, Protocol and the choice of endpoint."""

from __future__ import annotations

import secrets

import httpx

from forecourt.config import Settings
from forecourt.integrations.sms.client import SmsClient, SmsError, SmsGateway
from forecourt.integrations.sms.sandbox import SentSms, SmsSandbox

__all__ = ["SentSms", "SmsClient", "SmsError", "SmsGateway", "SmsSandbox", "from_settings"]

SANDBOX_BASE = "http://sms-sandbox"


def from_settings(settings: Settings) -> tuple[SmsClient, SmsSandbox | None]:
    """The client against `sms_api_base`, or against an in-process sandbox when unset."""
    key = settings.sms_api_key.get_secret_value() if settings.sms_api_key else None
    if settings.sms_api_base:
        if not key:
            raise RuntimeError("FORECOURT_SMS_API_KEY is required with FORECOURT_SMS_API_BASE")
        return SmsClient(api_key=key, base_url=settings.sms_api_base), None
    key = key or secrets.token_urlsafe(24)
    sandbox = SmsSandbox(api_key=key)
    client = SmsClient(
        api_key=key, base_url=SANDBOX_BASE, transport=httpx.ASGITransport(app=sandbox.app)
    )
    return client, sandbox
