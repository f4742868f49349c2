"""Alipay (open platform, RSA2): client, `PaymentProvider` adapter and the choice of gateway."""

from __future__ import annotations

import httpx

from forecourt.config import Settings
from forecourt.integrations.alipay.client import PRODUCTION_GATEWAY, AlipayClient
from forecourt.integrations.alipay.provider import AlipayProvider
from forecourt.integrations.alipay.sandbox import AlipaySandbox
from forecourt.kit import rsa

__all__ = [
    "PRODUCTION_GATEWAY",
    "SANDBOX_GATEWAY",
    "SANDBOX_MOUNT",
    "AlipayClient",
    "AlipayProvider",
    "AlipaySandbox",
    "from_settings",
]

SANDBOX_GATEWAY = "http://alipay-sandbox/gateway.do"
SANDBOX_MOUNT = "/sandbox/alipay"  # where the app mounts `sandbox.app` (cashier page links)


def from_settings(settings: Settings) -> tuple[AlipayProvider, AlipaySandbox | None]:
    """The provider against `alipay_gateway`, or against an in-process sandbox when unset.

    The runtime sets `provider.return_url` (the H5 result page) for H5 payments.
    """
    if settings.alipay_gateway:
        if settings.alipay_private_key is None:
            raise RuntimeError(
                "FORECOURT_ALIPAY_PRIVATE_KEY is required with FORECOURT_ALIPAY_GATEWAY"
            )
        if not settings.alipay_public_key:
            raise RuntimeError(
                "FORECOURT_ALIPAY_PUBLIC_KEY is required with FORECOURT_ALIPAY_GATEWAY"
            )
        client = AlipayClient(
            app_id=settings.alipay_app_id,
            private_key=rsa.load_private_key(settings.alipay_private_key.get_secret_value()),
            alipay_public_key=rsa.load_public_key(settings.alipay_public_key),
            gateway=settings.alipay_gateway,
        )
        return AlipayProvider(client), None
    test_only_app_key = rsa.generate_test_key()
    sandbox = AlipaySandbox(
        app_id=settings.alipay_app_id,
        app_public_key=test_only_app_key.public_key(),
        resend_scale=settings.sandbox_resend_scale,
    )
    cashier_base = settings.public_url.rstrip("/") + SANDBOX_MOUNT
    client = AlipayClient(
        app_id=settings.alipay_app_id,
        private_key=test_only_app_key,
        alipay_public_key=sandbox.alipay_public_key,
        gateway=SANDBOX_GATEWAY,
        page_gateway=cashier_base + "/gateway.do",  # the browser reaches the mounted sandbox
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    return AlipayProvider(client, cashier_base=cashier_base), sandbox
