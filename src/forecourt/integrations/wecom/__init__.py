"""WeChat Work (企业微信) CRM APIs: client, Protocol and the choice of endpoint."""

from __future__ import annotations

import secrets

import httpx

from forecourt.config import Settings
from forecourt.integrations.wecom.client import WeComApi, WeComClient, WeComError
from forecourt.integrations.wecom.sandbox import WeComSandbox

__all__ = ["WeComApi", "WeComClient", "WeComError", "WeComSandbox", "from_settings"]

SANDBOX_BASE = "http://wecom-sandbox"


def from_settings(
    settings: Settings, *, tags: tuple[str, ...] = ()
) -> tuple[WeComClient, WeComSandbox | None]:
    """The real client against `wecom_api_base`, or against an in-process sandbox when unset."""
    secret = settings.wecom_secret.get_secret_value() if settings.wecom_secret else None
    if settings.wecom_api_base:
        if not secret:
            raise RuntimeError("FORECOURT_WECOM_SECRET is required with FORECOURT_WECOM_API_BASE")
        client = WeComClient(
            corpid=settings.wecom_corpid, secret=secret, base_url=settings.wecom_api_base
        )
        return client, None
    if settings.env == "prod":
        raise RuntimeError("wecom: configure the real API in prod (no sandbox)")
    secret = secret or secrets.token_urlsafe(24)
    sandbox = WeComSandbox(
        corpid=settings.wecom_corpid,
        secret=secret,
        follow_users=(settings.wecom_follow_userid,),
        tags=tags,
    )
    client = WeComClient(
        corpid=settings.wecom_corpid,
        secret=secret,
        base_url=SANDBOX_BASE,
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    return client, sandbox
