"""WeChat mini-program server APIs: client, Protocol and the choice of endpoint."""

from __future__ import annotations

import secrets

import httpx

from forecourt.config import Settings
from forecourt.integrations.wechat.client import (
    WeChatApi,
    WeChatClient,
    WeChatError,
    WeChatPhone,
    WeChatSession,
)
from forecourt.integrations.wechat.sandbox import WeChatSandbox

__all__ = [
    "WeChatApi",
    "WeChatClient",
    "WeChatError",
    "WeChatPhone",
    "WeChatSandbox",
    "WeChatSession",
    "from_settings",
]

SANDBOX_BASE = "http://wechat-sandbox"


def from_settings(settings: Settings) -> tuple[WeChatClient, WeChatSandbox | None]:
    """The real client against `wechat_api_base`, or against an in-process sandbox when unset."""
    secret = settings.wechat_secret.get_secret_value() if settings.wechat_secret else None
    if settings.wechat_api_base:
        if not secret:
            raise RuntimeError("FORECOURT_WECHAT_SECRET is required with FORECOURT_WECHAT_API_BASE")
        client = WeChatClient(
            appid=settings.wechat_appid, secret=secret, base_url=settings.wechat_api_base
        )
        return client, None
    secret = secret or secrets.token_urlsafe(24)
    sandbox = WeChatSandbox(appid=settings.wechat_appid, secret=secret)
    client = WeChatClient(
        appid=settings.wechat_appid,
        secret=secret,
        base_url=SANDBOX_BASE,
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    return client, sandbox
