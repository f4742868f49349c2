"""Fixtures: an in-process Alipay sandbox + provider rig and a merchant notify receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forecourt.config import Settings
from forecourt.integrations import alipay
from forecourt.integrations.alipay import AlipayProvider, AlipaySandbox
from forecourt.kit import clock
from forecourt.payment.providers import InvalidNotification, PrepayRequest, ProviderNotification

APP_ID = "2021000000000001"
NOTIFY_URL = "http://merchant.test/pay/alipay/notify"
BUYER_ID = "2088102177846899"
RESEND_SCALE = 1e-5  # Alipay's 4m..15h schedule in under a second


@dataclass
class Receiver:
    """The merchant's notify endpoint: scripted failures first, then the provider decides."""

    provider: AlipayProvider
    fail_first: int = 0
    parsed: list[ProviderNotification] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def notify(self, request: Request) -> Response:
        body = await request.body()
        self.bodies.append(body)
        if self.fail_first:
            self.fail_first -= 1
            ack = self.provider.acknowledge(False)
        else:
            try:
                self.parsed.append(self.provider.parse_notification(request.headers, body))
                ack = self.provider.acknowledge(True)
            except InvalidNotification as exc:
                self.rejected.append(str(exc))
                ack = self.provider.acknowledge(False)
        return Response(ack.body, status_code=ack.status, media_type=ack.media_type)

    @property
    def app(self) -> Starlette:
        """The receiver as an ASGI app."""
        return Starlette(routes=[Route("/pay/alipay/notify", self.notify, methods=["POST"])])


@dataclass
class Rig:
    """Provider, sandbox and receiver wired together in-process."""

    provider: AlipayProvider
    sandbox: AlipaySandbox
    receiver: Receiver

    async def open(self, out_trade_no: str, amount_fen: int = 30000) -> str:
        """Prepay an order; its trade_no."""
        result = await self.provider.prepay(
            PrepayRequest(
                out_trade_no=out_trade_no,
                amount_fen=amount_fen,
                description="92#汽油 40.00L",
                notify_url=NOTIFY_URL,
                expires_at=clock.now() + timedelta(minutes=15),
                payer_id=BUYER_ID,
            )
        )
        return result.provider_ref

    async def paid(self, out_trade_no: str, amount_fen: int = 30000) -> str:
        """Prepay and pay an order, wait for the notification; its trade_no."""
        trade_no = await self.open(out_trade_no, amount_fen)
        await self.sandbox.complete(out_trade_no)
        await self.sandbox.settle()
        return trade_no


def settings(**overrides: object) -> Settings:
    """Settings with the in-process sandbox (no gateway) unless overridden."""
    values: dict[str, object] = {
        "alipay_gateway": None,
        "alipay_app_id": APP_ID,
        "public_url": "https://forecourt.test",
        "sandbox_resend_scale": RESEND_SCALE,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A fresh sandbox and provider from `from_settings`, notifications to a receiver."""
    provider, sandbox = alipay.from_settings(settings())
    assert sandbox is not None
    receiver = Receiver(provider)
    sandbox.deliver_transport = httpx.ASGITransport(app=receiver.app)
    yield Rig(provider, sandbox, receiver)
    await sandbox.aclose()
    await provider.client.aclose()
