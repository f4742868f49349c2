"""Build the payment providers of a process from settings."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from forecourt.config import Settings
from forecourt.payment import gateways as registry
from forecourt.payment import refunds
from forecourt.payment.gateways import Gateways
from forecourt.payment.providers import PaymentProvider, PaymentSandbox, ProviderName

if TYPE_CHECKING:
    from forecourt.runtime import Runtime


def serial_key(data_key: bytes) -> bytes:
    """The key serial numbers are checked with, derived from the data key."""
    return hmac.new(data_key, b"forecourt serial numbers v1", hashlib.sha256).digest()


def build_gateways(settings: Settings, *, data_key: bytes) -> Gateways:
    """WeChat Pay, Alipay and UnionPay: real endpoints where configured, sandboxes otherwise."""
    from forecourt.integrations import alipay, unionpay, wechatpay

    providers: dict[ProviderName, PaymentProvider] = {}
    sandboxes: dict[ProviderName, PaymentSandbox] = {}
    for name, module in (
        (ProviderName.WECHATPAY, wechatpay),
        (ProviderName.ALIPAY, alipay),
        (ProviderName.UNIONPAY, unionpay),
    ):
        provider, sandbox = module.from_settings(settings)
        if hasattr(provider, "return_url"):  # where the browser lands after an H5 payment
            base = settings.public_url.rstrip("/")
            provider.return_url = f"{base}/api/v1/payments/return/{name.value}"
        providers[name] = provider
        if sandbox is not None:
            if settings.env == "prod":
                raise RuntimeError(
                    f"{name.value}: configure the real provider in prod (no sandbox)"
                )
            sandboxes[name] = sandbox
            if hasattr(sandbox, "public_base"):  # links a browser opens (H5 cashier)
                base = settings.public_url.rstrip("/")
                sandbox.public_base = f"{base}/sandbox/{name.value}"
    return Gateways(providers=providers, sandboxes=sandboxes)


def install(runtime: Runtime) -> None:
    """Make the runtime's providers (built on first use) those of this process."""
    registry.install(lambda: runtime.gateways)
    refunds.configure(runtime.serial_key)
    settings = runtime.settings
    refunds.set_notify_base(settings.payment_notify_base_url or settings.public_url)
