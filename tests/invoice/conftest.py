"""An invoicing platform for tests: dispatcher, app, fast Nuonuo sandbox and an SMTP inbox."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import select

from forecourt.app import create_app
from forecourt.auth.models import Member
from forecourt.config import Settings
from forecourt.db import Database
from forecourt.integrations.nuonuo import NuonuoSandbox
from forecourt.invoice.models import Invoice
from forecourt.kit import clock, serials
from forecourt.order.models import Order
from forecourt.outbox.models import OutboxEvent
from forecourt.runtime import Runtime
from tests.conftest import test_settings
from tests.fixtures.auth import insert_station, make_member, member_headers
from tests.payment.conftest import forecourt  # noqa: F401 (fixture for the refund tests)
from tests.pump.conftest import link  # noqa: F401 (fixture)
from tests.pump.helpers import eventually

GRADES = {"92": 776, "95": 832, "0": 765}


class Inbox:
    """An aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        """Store the message."""
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A local SMTP server on a free loopback port (nothing leaves the machine)."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def settings(db: Database, smtp: tuple[Inbox, int]) -> Settings:
    """Test settings with a quick sandbox and the local SMTP server."""
    return test_settings(
        db.url,
        invoice_sandbox_delay_min_seconds=0.01,
        invoice_sandbox_delay_max_seconds=0.05,
        sandbox_resend_scale=0.001,
        smtp_host="127.0.0.1",
        smtp_port=smtp[1],
        invoice_seller_quota_litres=10_000,
    )


@dataclass
class World:
    """Everything an invoice test drives."""

    runtime: Runtime
    http: httpx.AsyncClient
    transport: httpx.ASGITransport
    inbox: Inbox
    station_id: int
    member: Member
    headers: dict[str, str]
    stations: list[int] = field(default_factory=list)

    @property
    def sandbox(self) -> NuonuoSandbox:
        """The in-process Nuonuo sandbox."""
        sandbox = self.runtime.invoicing.sandbox
        assert isinstance(sandbox, NuonuoSandbox)
        return sandbox

    async def order(
        self,
        *,
        grade: str = "92",
        volume_ml: int = 30_000,
        paid_fen: int | None = None,
        kind: str = "postpay",
        status: str = "completed",
        station_id: int | None = None,
        member_id: int | None = None,
        completed_at: datetime | None = None,
        refunded_fen: int = 0,
        discount_fen: int = 0,
    ) -> str:
        """A fuel order as payment leaves it (committed); its id."""
        now = clock.now()
        price = GRADES[grade]
        listed = (volume_ml * price + 500) // 1000
        amount = listed - discount_fen if paid_fen is None else paid_fen
        done = status in ("completed", "refunded")
        order = Order(
            id=serials.new_serial(self.runtime.serial_key, device="test", now=now),
            member_id=member_id or self.member.id,
            station_id=None if kind == "topup" else (station_id or self.station_id),
            kind=kind,
            status=status,
            grade_code=None if kind == "topup" else grade,
            unit_price_fen=None if kind == "topup" else price,
            volume_ml=None if kind == "topup" else volume_ml,
            list_fen=listed,
            discount_fen=discount_fen,
            payable_fen=amount,
            paid_fen=amount if status != "pending" else 0,
            settled_fen=amount if done else None,
            refunded_fen=refunded_fen,
            lines=[],
            created_at=now,
            expires_at=now + timedelta(minutes=15),
            paid_at=now if status != "pending" else None,
            completed_at=(completed_at or now) if done else None,
        )
        async with self.runtime.db.unit_of_work() as session:
            session.add(order)
        return order.id

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST as the driver."""
        h = dict(headers or self.headers)
        if key is not None:
            h["Idempotency-Key"] = key
        return await self.http.post(path, json=body, headers=h)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET as the driver."""
        return await self.http.get(path, headers=headers or self.headers)

    async def request(self, order_ids: list[str], **body: Any) -> httpx.Response:
        """POST /invoices with a company title unless another is given."""
        payload: dict[str, Any] = {"order_ids": order_ids}
        if "title_id" not in body and "title" not in body:
            payload["title"] = {
                "kind": "company",
                "name": "深圳市腾讯计算机系统有限公司",
                "tax_id": "91440300708461136T",
            }
        payload |= body
        return await self.post("/api/v1/invoices", payload)

    async def final(self, invoice_id: int, *, within: float = 10.0) -> dict[str, Any]:
        """Wait until the invoice is issued or failed (and its outbox work is done)."""

        async def done() -> dict[str, Any] | None:
            resp = await self.get(f"/api/v1/invoices/{invoice_id}")
            body: dict[str, Any] = resp.json()
            return body if body["status"] in ("issued", "failed", "reversed") else None

        body = await eventually(done, within=within, what=f"invoice {invoice_id} final")
        await self.settle()
        return body

    async def settle(self) -> None:
        """Wait for the sandbox and the outbox to go quiet."""
        await self.sandbox.join()

        async def quiet() -> bool:
            async with self.runtime.db.read_only() as session:
                stmt = select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))
                return (await session.scalars(stmt)).first() is None

        await eventually(quiet, what="outbox drained")
        await self.runtime.tasks.drain(grace=10)
        await self.sandbox.join()

    async def invoices(self) -> list[Invoice]:
        """Every invoice row, oldest first."""
        async with self.runtime.db.read_only() as session:
            rows = list(await session.scalars(select(Invoice).order_by(Invoice.id)))
            session.expunge_all()
            return rows


@pytest.fixture
async def world(runtime: Runtime, smtp: tuple[Inbox, int]) -> AsyncIterator[World]:
    """A station, a driver, the app with its dispatcher, callbacks routed to the app."""
    await runtime.tasks.start(dispatcher=True, scheduler=False)
    station_id = await insert_station(runtime)
    member = await make_member(runtime, openid="o-invoice-driver")
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    runtime.invoicing.route_callbacks(transport)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield World(
                runtime=runtime,
                http=http,
                transport=transport,
                inbox=smtp[0],
                station_id=station_id,
                member=member,
                headers=member_headers(runtime, member.id),
            )
    finally:
        await runtime.tasks.stop()
        await runtime.invoicing.aclose()
