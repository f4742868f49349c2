"""The sandbox as its own server.

`uvicorn --factory forecourt.integrations.wechatpay.sandbox:create_app`

Merchant credentials come from FORECOURT_WECHATPAY_PRIVATE_KEY / _CERT_SERIAL / _APIV3_KEY,
or are generated (test-only) and printed to stderr for the client under test. Set
FORECOURT_WECHATPAY_SANDBOX_PUBLIC_KEY_MODE=1 to sign as a `PUB_KEY_ID_…` public key.
"""

from __future__ import annotations

import os
import sys

from starlette.applications import Starlette

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.sandbox import TestMerchant, WeChatPaySandbox


def create_app() -> Starlette:
    """Standalone sandbox; merchant keys from settings or generated and printed."""
    from forecourt.config import Settings

    settings = Settings()
    if settings.wechatpay_private_key:
        if not settings.wechatpay_cert_serial or not settings.wechatpay_apiv3_key:
            raise RuntimeError(
                "FORECOURT_WECHATPAY_CERT_SERIAL and FORECOURT_WECHATPAY_APIV3_KEY are required"
            )
        key = crypto.load_private_key(settings.wechatpay_private_key.get_secret_value())
        serial = settings.wechatpay_cert_serial
        apiv3_key = settings.wechatpay_apiv3_key.get_secret_value()
    else:
        merchant = TestMerchant.generate()
        key, serial, apiv3_key = merchant.key, merchant.serial, merchant.apiv3_key
        print(
            "test-only WeChat Pay sandbox merchant credentials (no real money):\n"
            f"FORECOURT_WECHATPAY_CERT_SERIAL={serial}\n"
            f"FORECOURT_WECHATPAY_APIV3_KEY={apiv3_key}\n"
            f"FORECOURT_WECHATPAY_PRIVATE_KEY=\n{crypto.private_pem(key)}",
            file=sys.stderr,
        )
    mode = os.environ.get("FORECOURT_WECHATPAY_SANDBOX_PUBLIC_KEY_MODE", "").lower()
    sandbox = WeChatPaySandbox(
        mchid=settings.wechatpay_mchid,
        appid=settings.wechat_appid,
        merchant_public_key=key.public_key(),
        merchant_serial=serial,
        apiv3_key=apiv3_key,
        public_key_mode=mode in ("1", "true", "yes"),
        resend_scale=settings.sandbox_resend_scale,
    )
    print(
        f"WeChat Pay sandbox signs as {sandbox.identity.serial}; keys at GET /sandbox/keys",
        file=sys.stderr,
    )
    return sandbox.app
