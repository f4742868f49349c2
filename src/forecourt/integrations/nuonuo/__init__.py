"""Nuonuo open platform (诺诺) for 数电票: wire client, provider adapter, endpoint choice."""

from __future__ import annotations

import secrets

import httpx

from forecourt.config import Settings
from forecourt.integrations.httplog import redact_query_strings
from forecourt.integrations.nuonuo.client import (
    PRODUCTION_BASE,
    PRODUCTION_TOKEN_URL,
    NuonuoClient,
    NuonuoError,
)
from forecourt.integrations.nuonuo.provider import NuonuoProvider
from forecourt.integrations.nuonuo.sandbox import NuonuoSandbox

__all__ = ["NuonuoClient", "NuonuoError", "NuonuoProvider", "NuonuoSandbox", "from_settings"]

SANDBOX_BASE = "http://nuonuo-sandbox"


def from_settings(settings: Settings) -> tuple[NuonuoProvider, NuonuoSandbox | None]:
    """The provider against `nuonuo_api_base`, or against an in-process sandbox when unset.

    The sandbox gets a freshly generated test-only app secret; its `deliver_transport` is None
    (callbacks over the network to `callBackUrl`) until a test points it at the app.
    """
    redact_query_strings()
    if settings.nuonuo_api_base:
        if settings.nuonuo_app_secret is None:
            raise RuntimeError("FORECOURT_NUONUO_APP_SECRET is required with NUONUO_API_BASE")
        token = settings.nuonuo_access_token
        base = settings.nuonuo_api_base.rstrip("/")
        client = NuonuoClient(
            app_key=settings.nuonuo_app_key,
            app_secret=settings.nuonuo_app_secret.get_secret_value(),
            access_token=token.get_secret_value() if token is not None else None,
            base_url=base,
            token_url=PRODUCTION_TOKEN_URL if base == PRODUCTION_BASE else f"{base}/accessToken",
        )
        return NuonuoProvider(client), None
    secret = secrets.token_hex(16)  # test-only: generated per start, never for real invoices
    sandbox = NuonuoSandbox(
        app_key=settings.nuonuo_app_key,
        app_secret=secret,
        delay=(
            settings.invoice_sandbox_delay_min_seconds,
            settings.invoice_sandbox_delay_max_seconds,
        ),
        default_quota_litres=settings.invoice_seller_quota_litres,
        resend_scale=settings.sandbox_resend_scale,
    )
    client = NuonuoClient(
        app_key=settings.nuonuo_app_key,
        app_secret=secret,
        base_url=SANDBOX_BASE,
        token_url=f"{SANDBOX_BASE}/accessToken",
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    return NuonuoProvider(client), sandbox
