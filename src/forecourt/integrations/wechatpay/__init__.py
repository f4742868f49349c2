"""WeChat Pay API v3 (JSAPI): wire client, `PaymentProvider` adapter and the choice of endpoint."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from forecourt.config import Settings
from forecourt.integrations.httplog import redact_query_strings
from forecourt.integrations.wechatpay.client import WeChatPayClient, WeChatPayError
from forecourt.integrations.wechatpay.provider import WeChatPayProvider
from forecourt.integrations.wechatpay.sandbox import TestMerchant, WeChatPaySandbox

__all__ = [
    "WeChatPayClient",
    "WeChatPayError",
    "WeChatPayProvider",
    "WeChatPaySandbox",
    "from_settings",
]

SANDBOX_BASE = "http://wechatpay-sandbox"


def _need(name: str, value: str | SecretStr | None) -> str:
    if not value:
        raise RuntimeError(
            f"FORECOURT_WECHATPAY_{name} is required with FORECOURT_WECHATPAY_API_BASE"
        )
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _production(settings: Settings, base_url: str) -> WeChatPayProvider:
    private_key = _need("PRIVATE_KEY", settings.wechatpay_private_key)
    cert_serial = _need("CERT_SERIAL", settings.wechatpay_cert_serial)
    apiv3_key = _need("APIV3_KEY", settings.wechatpay_apiv3_key)
    public_key = _need("PLATFORM_PUBLIC_KEY", settings.wechatpay_platform_public_key)
    key_id = _need("PLATFORM_KEY_ID", settings.wechatpay_platform_key_id)
    client = WeChatPayClient(
        mchid=settings.wechatpay_mchid,
        appid=settings.wechat_appid,
        private_key=private_key,
        cert_serial=cert_serial,
        apiv3_key=apiv3_key,
        platform_keys={key_id: public_key},
        base_url=base_url,
    )
    return WeChatPayProvider(client)


def from_settings(settings: Settings) -> tuple[WeChatPayProvider, WeChatPaySandbox | None]:
    """The provider against `wechatpay_api_base`, or against an in-process sandbox when unset.

    The sandbox gets freshly generated test-only merchant credentials and signs in
    public-key mode (`PUB_KEY_ID_…`), as production is configured; its `deliver_transport`
    is None (real network) until the runtime points it at the app.
    """
    redact_query_strings()
    if settings.wechatpay_api_base:
        return _production(settings, settings.wechatpay_api_base), None
    merchant = TestMerchant.generate()  # test-only: generated per start, never for real money
    sandbox = WeChatPaySandbox(
        mchid=settings.wechatpay_mchid,
        appid=settings.wechat_appid,
        merchant_public_key=merchant.key.public_key(),
        merchant_serial=merchant.serial,
        apiv3_key=merchant.apiv3_key,
        public_key_mode=True,
        resend_scale=settings.sandbox_resend_scale,
    )
    client = WeChatPayClient(
        mchid=settings.wechatpay_mchid,
        appid=settings.wechat_appid,
        private_key=merchant.key,
        cert_serial=merchant.serial,
        apiv3_key=merchant.apiv3_key,
        platform_keys=sandbox.platform_keys(),
        base_url=SANDBOX_BASE,
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    return WeChatPayProvider(client), sandbox
