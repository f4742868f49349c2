"""A Nuonuo client wired to an in-process sandbox (quick issuance)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from forecourt.integrations.nuonuo import NuonuoClient, NuonuoProvider, NuonuoSandbox

APP_KEY = "SD63236305"
SECRET = "SDDED2523BED4643"
SELLER = "91530100MA6K0FC01K"


@dataclass
class Pair:
    """The sandbox and a provider talking to it."""

    sandbox: NuonuoSandbox
    provider: NuonuoProvider
    client: NuonuoClient
    callbacks: list[httpx.Request]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    """A sandbox issuing within 10-30 ms; callbacks go to a recorder that acknowledges."""
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200, json={"status": "0000", "message": "同步成功"})

    sandbox = NuonuoSandbox(
        app_key=APP_KEY,
        app_secret=SECRET,
        delay=(0.01, 0.03),
        default_quota_litres=100,
        resend_scale=0.001,
        deliver_transport=httpx.MockTransport(receiver),
    )
    client = NuonuoClient(
        app_key=APP_KEY,
        app_secret=SECRET,
        base_url="http://nuonuo",
        token_url="http://nuonuo/accessToken",
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    yield Pair(sandbox, NuonuoProvider(client), client, received)
    await sandbox.aclose()
    await client.aclose()
