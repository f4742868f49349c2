"""The sandbox as its own server.

`uvicorn --factory forecourt.integrations.nuonuo.sandbox:create_app`

The app key and secret come from FORECOURT_NUONUO_APP_KEY / _APP_SECRET, or a test-only
secret is generated and printed to stderr for the client under test. Callbacks go over the
network to the `callBackUrl` of each invoice.
"""

from __future__ import annotations

import secrets
import sys

from starlette.applications import Starlette

from forecourt.integrations.nuonuo.sandbox import NuonuoSandbox


def create_app() -> Starlette:
    """Standalone sandbox; app secret from settings or generated and printed."""
    from forecourt.config import Settings

    settings = Settings()
    if settings.nuonuo_app_secret is not None:
        secret = settings.nuonuo_app_secret.get_secret_value()
    else:
        secret = secrets.token_hex(16)
        print(
            "test-only Nuonuo sandbox credentials (issues no real invoices):\n"
            f"FORECOURT_NUONUO_APP_KEY={settings.nuonuo_app_key}\n"
            f"FORECOURT_NUONUO_APP_SECRET={secret}",
            file=sys.stderr,
        )
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
    return sandbox.app
