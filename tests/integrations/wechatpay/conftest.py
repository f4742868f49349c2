"""Fixtures: test-only keys, a sandbox + client + provider rig, a merchant notify receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.client import WeChatPayClient
from forecourt.integrations.wechatpay.provider import WeChatPayProvider
from forecourt.integrations.wechatpay.sandbox import TestMerchant, WeChatPaySandbox
from forecourt.kit import clock
from forecourt.payment.providers import (
    InvalidNotification,
    PrepayRequest,
    PrepayResult,
    ProviderNotification,
)

MCHID = "1900000001"
APPID = "wx-forecourt-demo"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
NOTIFY_URL = "http://merchant.test/pay/wechat/notify"
PAYER_IP = "203.0.113.7"  # TEST-NET-3: a driver's phone on the H5 site
BASE = "http://wechatpay-sandbox"


@pytest.fixture(scope="session")
def merchant() -> TestMerchant:
    """Test-only merchant credentials, generated once per run."""
    return TestMerchant.generate()


@pytest.fixture(scope="session")
def platform_key() -> rsa.RSAPrivateKey:
    """A test-only platform key shared by the sandboxes of this run."""
    return crypto.generate_test_key()


@pytest.fixture(scope="session")
def other_key() -> rsa.RSAPrivateKey:
    """A test-only RSA-2048 key that is nobody's merchant key."""
    return crypto.generate_test_key()


@dataclass
class Receiver:
    """The merchant's notify endpoint: scripted statuses first, then the provider decides."""

    provider: WeChatPayProvider
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    parsed: list[ProviderNotification] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    async def notify(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((dict(request.headers), body))
        if self.statuses:
            return Response(b'{"code":"FAIL","message":"busy"}', status_code=self.statuses.pop(0))
        try:
            self.parsed.append(self.provider.parse_notification(request.headers, body))
            ack = self.provider.acknowledge(True)
        except InvalidNotification as exc:
            self.rejected.append(str(exc))
            ack = self.provider.acknowledge(False)
        return Response(ack.body, status_code=ack.status, media_type=ack.media_type)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/pay/wechat/notify", self.notify, methods=["POST"])])


@dataclass
class Rig:
    """A sandbox, a client and provider pointed at it, and the merchant's receiver."""

    sandbox: WeChatPaySandbox
    client: WeChatPayClient
    provider: WeChatPayProvider
    receiver: Receiver
    merchant: TestMerchant

    async def prepay(self, out_trade_no: str, amount_fen: int = 1234) -> PrepayResult:
        """Open a payment through the provider."""
        return await self.provider.prepay(
            PrepayRequest(
                out_trade_no=out_trade_no,
                amount_fen=amount_fen,
                description="92# 汽油 8.20L",
                notify_url=NOTIFY_URL,
                expires_at=clock.now() + timedelta(minutes=15),
                payer_id=OPENID,
            )
        )

    async def prepay_h5(
        self, out_trade_no: str, amount_fen: int = 1234, client_ip: str | None = PAYER_IP
    ) -> PrepayResult:
        """Open an H5 payment through the provider (no openid, the payer's IP)."""
        return await self.provider.prepay(
            PrepayRequest(
                out_trade_no=out_trade_no,
                amount_fen=amount_fen,
                description="92# 汽油 8.20L",
                notify_url=NOTIFY_URL,
                expires_at=clock.now() + timedelta(minutes=15),
                client_ip=client_ip,
            )
        )

    async def paid(self, out_trade_no: str, amount_fen: int = 1234) -> None:
        """Prepay, pay, and wait for the notification to be handled."""
        await self.prepay(out_trade_no, amount_fen)
        await self.sandbox.complete(out_trade_no)
        await self.sandbox.join()

    def client_for(self, **overrides: object) -> WeChatPayClient:
        """Another client on the same sandbox with some constructor arguments changed."""
        kwargs: dict[str, object] = {
            "mchid": MCHID,
            "appid": APPID,
            "private_key": self.merchant.key,
            "cert_serial": self.merchant.serial,
            "apiv3_key": self.merchant.apiv3_key,
            "platform_keys": self.sandbox.platform_keys(),
            "base_url": BASE,
            "transport": httpx.ASGITransport(app=self.sandbox.app),
        }
        kwargs.update(overrides)
        return WeChatPayClient(**kwargs)  # type: ignore[arg-type]

    async def raw(
        self,
        method: str,
        target: str,
        payload: object = None,
        *,
        key: rsa.RSAPrivateKey | None = None,
        serial: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """A hand-signed request to the sandbox (to send what our client never would)."""
        body = b"" if payload is None else orjson.dumps(payload)
        stamp = int(clock.now().timestamp()) if timestamp is None else timestamp
        auth = crypto.authorization(
            mchid=MCHID,
            serial_no=serial or self.merchant.serial,
            key=key or self.merchant.key,
            method=method,
            path_with_query=target,
            body=body,
            timestamp=str(stamp),
            nonce=crypto.nonce_str(),
        )
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        transport = httpx.ASGITransport(app=self.sandbox.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            return await http.request(method, target, content=body, headers=headers)


MakeRig = Callable[..., Rig]


@pytest.fixture
async def make_rig(
    merchant: TestMerchant, platform_key: rsa.RSAPrivateKey
) -> AsyncIterator[MakeRig]:
    """Build rigs (closed at teardown): `make_rig(public_key_mode=..., prefix=...)`."""
    rigs: list[Rig] = []

    def make(
        *,
        public_key_mode: bool = False,
        resend_scale: float = 0.001,
        refund_seconds: float = 0.01,
        prefix: str = "",
    ) -> Rig:
        sandbox = WeChatPaySandbox(
            mchid=MCHID,
            appid=APPID,
            merchant_public_key=merchant.key.public_key(),
            merchant_serial=merchant.serial,
            apiv3_key=merchant.apiv3_key,
            public_key_mode=public_key_mode,
            platform_key=platform_key,
            resend_scale=resend_scale,
            refund_seconds=refund_seconds,
        )
        app = Starlette(routes=[Mount(prefix, app=sandbox.app)]) if prefix else sandbox.app
        client = WeChatPayClient(
            mchid=MCHID,
            appid=APPID,
            private_key=merchant.key,
            cert_serial=merchant.serial,
            apiv3_key=merchant.apiv3_key,
            platform_keys=sandbox.platform_keys(),
            base_url=BASE + prefix,
            transport=httpx.ASGITransport(app=app),
        )
        provider = WeChatPayProvider(client)
        receiver = Receiver(provider)
        sandbox.deliver_transport = httpx.ASGITransport(app=receiver.app)
        rig = Rig(sandbox, client, provider, receiver, merchant)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.sandbox.aclose()
        await rig.client.aclose()


@pytest.fixture
def rig(make_rig: MakeRig) -> Rig:
    """A certificate-mode rig."""
    return make_rig()


async def eventually(check: Callable[[], bool]) -> None:
    """Wait (up to 5 s) until `check()` holds (background deliveries)."""
    async with asyncio.timeout(5):
        while not check():  # noqa: ASYNC110 (polling state mutated by background tasks)
            await asyncio.sleep(0.005)
