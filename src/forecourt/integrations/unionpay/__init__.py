"""UnionPay online gateway (5.1.0, signMethod 01): client, adapter and the choice of gateway."""

from __future__ import annotations

import httpx

from forecourt.config import Settings
from forecourt.integrations.unionpay.client import PRODUCTION_GATEWAY, UnionPayClient
from forecourt.integrations.unionpay.crypto import CertTrust
from forecourt.integrations.unionpay.provider import UnionPayProvider
from forecourt.integrations.unionpay.sandbox import UnionPaySandbox
from forecourt.integrations.unionpay.sandbox.pki import sandbox_cert_id
from forecourt.kit import rsa

__all__ = [
    "PRODUCTION_GATEWAY",
    "SANDBOX_GATEWAY",
    "SANDBOX_MOUNT",
    "CertTrust",
    "UnionPayClient",
    "UnionPayProvider",
    "UnionPaySandbox",
    "from_settings",
]

SANDBOX_GATEWAY = "http://unionpay-sandbox"
SANDBOX_MOUNT = "/sandbox/unionpay"  # where the app mounts `sandbox.app` (cashier page links)


def from_settings(settings: Settings) -> tuple[UnionPayProvider, UnionPaySandbox | None]:
    """The provider against `unionpay_gateway`, or against an in-process sandbox when unset.

    The runtime sets `provider.return_url` (the H5 payment's frontUrl) for H5 payments.
    """
    if settings.unionpay_gateway:
        key = settings.unionpay_private_key
        cert_id = settings.unionpay_cert_id
        root = settings.unionpay_root_cert
        for env, value in (
            ("FORECOURT_UNIONPAY_PRIVATE_KEY", key),
            ("FORECOURT_UNIONPAY_CERT_ID", cert_id),
            ("FORECOURT_UNIONPAY_ROOT_CERT", root),
        ):
            if not value:
                raise RuntimeError(f"{env} is required with FORECOURT_UNIONPAY_GATEWAY")
        if key is None or not cert_id or not root:  # for the type checker; checked above
            raise RuntimeError("UnionPay settings incomplete")
        client = UnionPayClient(
            mer_id=settings.unionpay_mer_id,
            private_key=rsa.load_private_key(key.get_secret_value()),
            cert_id=cert_id,
            trust=CertTrust(root),
            gateway=settings.unionpay_gateway,
        )
        return UnionPayProvider(client), None
    test_only_merchant_key = rsa.generate_test_key()
    cert_id = sandbox_cert_id()
    sandbox = UnionPaySandbox(
        mer_id=settings.unionpay_mer_id,
        cert_id=cert_id,
        merchant_public_key=test_only_merchant_key.public_key(),
        resend_scale=settings.sandbox_resend_scale,
    )
    cashier_base = settings.public_url.rstrip("/") + SANDBOX_MOUNT
    client = UnionPayClient(
        mer_id=settings.unionpay_mer_id,
        private_key=test_only_merchant_key,
        cert_id=cert_id,
        trust=CertTrust(sandbox.root_bundle_pem),
        gateway=SANDBOX_GATEWAY,
        front_gateway=cashier_base,  # the browser posts the H5 form to the mounted sandbox
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    return UnionPayProvider(client, cashier_base=cashier_base), sandbox
