"""Fixtures: an in-process UnionPay sandbox + provider rig and a merchant backUrl receiver."""

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
from forecourt.integrations import unionpay
from forecourt.integrations.unionpay import UnionPayProvider, UnionPaySandbox
from forecourt.kit import clock
from forecourt.payment.providers import (
    InvalidNotification,
    PrepayRequest,
    ProviderNotification,
    RefundRequest,
    RefundResult,
)

MER_ID = "777290058110048"
NOTIFY_URL = "http://merchant.test/pay/unionpay/notify"
RESEND_SCALE = 1e-4  # UnionPay's 1m..16m schedule in about 0.2 s
APP_PAYER = "o-app-driver"  # any payer_id keeps the app (tn) flow; None means H5 (frontTransReq)


@dataclass
class Receiver:
    """The merchant's backUrl: scripted failures first, then the provider decides."""

    provider: UnionPayProvider
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
        return Starlette(routes=[Route("/pay/unionpay/notify", self.notify, methods=["POST"])])


@dataclass
class Rig:
    """Provider, sandbox and receiver wired together in-process."""

    provider: UnionPayProvider
    sandbox: UnionPaySandbox
    receiver: Receiver

    async def open(self, out_trade_no: str, amount_fen: int = 30000) -> str:
        """Prepay an app order; its tn."""
        result = await self.provider.prepay(
            PrepayRequest(
                out_trade_no=out_trade_no,
                amount_fen=amount_fen,
                description="92#汽油 40.00L",
                notify_url=NOTIFY_URL,
                expires_at=clock.now() + timedelta(minutes=15),
                payer_id=APP_PAYER,
            )
        )
        return result.provider_ref

    async def paid(self, out_trade_no: str, amount_fen: int = 30000) -> str:
        """Prepay and pay an order, wait for the notification; its queryId."""
        await self.open(out_trade_no, amount_fen)
        await self.sandbox.complete(out_trade_no)
        await self.sandbox.settle()
        txn = self.sandbox.order(out_trade_no)
        assert txn is not None
        return txn.query_id

    async def refund(
        self, out_trade_no: str, query_id: str, out_refund_no: str, fen: int
    ) -> RefundResult:
        """Refund part of a paid order."""
        return await self.provider.refund(
            RefundRequest(out_trade_no, query_id, out_refund_no, fen, 30000, "退款", NOTIFY_URL)
        )


def settings(**overrides: object) -> Settings:
    """Settings with the in-process sandbox (no gateway) unless overridden."""
    values: dict[str, object] = {
        "unionpay_gateway": None,
        "unionpay_mer_id": MER_ID,
        "public_url": "https://forecourt.test",
        "sandbox_resend_scale": RESEND_SCALE,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A fresh sandbox and provider from `from_settings`, notifications to a receiver."""
    provider, sandbox = unionpay.from_settings(settings())
    assert sandbox is not None
    receiver = Receiver(provider)
    sandbox.deliver_transport = httpx.ASGITransport(app=receiver.app)
    yield Rig(provider, sandbox, receiver)
    await sandbox.aclose()
    await provider.client.aclose()
