"""A running platform for payment tests: pump link, outbox dispatcher, app and sandboxes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from forecourt.app import create_app
from forecourt.auth.models import Member
from forecourt.integrations.wechatpay import WeChatPaySandbox
from forecourt.payment.models import Refund
from forecourt.payment.providers import ProviderName
from forecourt.runtime import Runtime
from tests.fixtures.auth import make_member, member_headers, next_phone
from tests.pump.conftest import link  # noqa: F401 (fixture)
from tests.pump.helpers import (
    ScriptedGateway,
    eventually,
    fp_row,
    make_pump_station,
    sale_report,
)


@dataclass
class Forecourt:
    """Everything a payment test drives."""

    runtime: Runtime
    http: httpx.AsyncClient
    station_id: int
    gateway: ScriptedGateway
    member: Member
    headers: dict[str, str]
    meters: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def wechat(self) -> WeChatPaySandbox:
        """The WeChat Pay sandbox."""
        sandbox = self.runtime.gateways.sandboxes[ProviderName.WECHATPAY]
        assert isinstance(sandbox, WeChatPaySandbox)
        return sandbox

    async def sale(self, *, seq: int, nozzle: int = 1, volume_ml: int = 30_000) -> None:
        """The pump reports a completed sale (meters continue per nozzle); wait until stored."""
        grade, price = {1: ("92", 776), 2: ("95", 832), 3: ("95", 832)}[nozzle]
        fp = 1 if nozzle in (1, 2) else 2
        volume, amount = self.meters.get(nozzle, (1_000_000, 800_000))
        report = sale_report(
            seq=seq,
            nozzle=nozzle,
            grade=grade,
            volume_ml=volume_ml,
            unit_price_fen=price,
            totalizer_before_ml=volume,
            totalizer_before_fen=amount,
        )
        self.meters[nozzle] = (report.totalizer_volume_ml, report.totalizer_amount_fen)
        await self.gateway.sale(fp, report)

        async def stored() -> bool:
            return (await fp_row(self.runtime, self.station_id, fp)).last_seq >= seq

        await eventually(stored, what=f"sale {seq} stored")

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST as the driver (with an Idempotency-Key when given)."""
        h = dict(headers or self.headers)
        if key is not None:
            h["Idempotency-Key"] = key
        return await self.http.post(path, json=body, headers=h)

    async def refunds_settled(self) -> None:
        """Wait until no refund is still with a provider (sent after commit by the outbox)."""

        async def settled() -> bool:
            async with self.runtime.db.read_only() as session:
                stmt = select(func.count()).select_from(Refund).where(Refund.status == "processing")
                return await session.scalar(stmt) == 0

        await asyncio.sleep(0.05)
        await eventually(settled, what="refunds settled")

    async def get(self, path: str) -> httpx.Response:
        """GET as the driver."""
        return await self.http.get(path, headers=self.headers)


@pytest.fixture
async def forecourt(link: Runtime) -> AsyncIterator[Forecourt]:  # noqa: F811
    """A station with idle pumps on a scripted gateway, a driver, and the app."""
    link.settings.sandbox_resend_scale = 0.001
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    await gateway.state(2, 3, last_seq=0)

    async def idle() -> bool:
        return (await fp_row(link, station.id, 2)).state == 3

    await eventually(idle, what="pumps idle")
    member = await make_member(link, phone=next_phone(), openid="o-test-driver-1")
    app = create_app(runtime=link)
    transport = httpx.ASGITransport(app=app)
    link.gateways.route_notifications(transport)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Forecourt(
            runtime=link,
            http=http,
            station_id=station.id,
            gateway=gateway,
            member=member,
            headers=member_headers(link, member.id),
        )
    await gateway.disconnect()
