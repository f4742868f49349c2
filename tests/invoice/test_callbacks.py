"""Result callbacks: confirmed by a query, applied once however often and however concurrently."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import orjson
from sqlalchemy import select

from forecourt.invoice import tasks
from forecourt.kit import clock
from forecourt.outbox.models import OutboxEvent
from tests.invoice.conftest import World

NOTIFY = "/api/v1/invoices/notify/nuonuo"
FORM = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}


def _callback_body(world: World, serial: str) -> bytes:
    invoice = world.sandbox.invoices[serial]
    content = orjson.dumps(invoice.callback_content()).decode()
    return urlencode(
        {"operater": "callback", "orderno": invoice.order_no, "content": content}
    ).encode()


async def _issued_events(world: World, invoice_id: int) -> int:
    async with world.runtime.db.read_only() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "invoice.status_changed")
        )
        return sum(
            1
            for e in rows
            if e.payload["invoice_id"] == invoice_id and e.payload["status"] == "issued"
        )


def _silence_callbacks(world: World) -> list[httpx.Request]:
    """The platform's callbacks go nowhere (answered 503); the requests are kept."""
    seen: list[httpx.Request] = []

    def lost(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    world.runtime.invoicing.route_callbacks(httpx.MockTransport(lost))
    return seen


async def _issuing(world: World, email: str | None = "fleet@example.com") -> dict[str, object]:
    made = await world.request([await world.order()], email=email)
    assert made.status_code == 201, made.text
    body: dict[str, object] = made.json()
    await world.settle()
    return body


async def test_concurrent_and_repeated_callbacks_apply_once(world: World) -> None:
    _silence_callbacks(world)
    made = await _issuing(world)
    invoice_id = int(str(made["id"]))
    current = (await world.get(f"/api/v1/invoices/{invoice_id}")).json()
    assert current["status"] == "issuing"
    [serial] = world.sandbox.invoices
    body = _callback_body(world, serial)
    answers = await asyncio.gather(
        *(world.http.post(NOTIFY, content=body, headers=FORM) for _ in range(5))
    )
    assert [a.status_code for a in answers] == [200] * 5
    assert all(a.json() == {"status": "0000", "message": "同步成功"} for a in answers)
    again = await world.http.post(NOTIFY, content=body, headers=FORM)
    assert again.json()["status"] == "0000"
    issued = await world.final(invoice_id)
    assert issued["status"] == "issued"
    assert issued["invoice_number"] == world.sandbox.invoices[serial].number
    assert await _issued_events(world, invoice_id) == 1
    assert len(world.inbox.messages) == 1
    assert len(world.sandbox.invoices) == 1


async def test_callbacks_that_do_not_check_out_change_nothing(world: World) -> None:
    _silence_callbacks(world)
    made = await _issuing(world)
    [serial] = world.sandbox.invoices
    invoice = world.sandbox.invoices[serial]
    forged = invoice.callback_content() | {"c_orderno": "FC000000UNKNOWNXXXXX"}
    unknown = urlencode({"operater": "callback", "content": orjson.dumps(forged).decode()}).encode()
    assert (await world.http.post(NOTIFY, content=unknown, headers=FORM)).json()["status"] == "0000"
    other_serial = invoice.callback_content() | {"c_fpqqlsh": "20990101000000000999"}
    mismatch = urlencode(
        {"operater": "callback", "content": orjson.dumps(other_serial).decode()}
    ).encode()
    assert (await world.http.post(NOTIFY, content=mismatch, headers=FORM)).json()[
        "status"
    ] == "0000"
    garbage = await world.http.post(NOTIFY, content=b"hello", headers=FORM)
    assert (garbage.status_code, garbage.json()["status"]) == (500, "9999")
    current = (await world.get(f"/api/v1/invoices/{made['id']}")).json()
    assert current["status"] == "issuing"


async def test_a_lost_callback_is_made_good_by_the_query_job(world: World) -> None:
    seen = _silence_callbacks(world)
    made = await _issuing(world, email=None)
    assert len(seen) == 6  # first attempt and five resends, all unanswered
    await tasks.query_issuing(world.runtime)  # too early: nothing is due
    assert (await world.get(f"/api/v1/invoices/{made['id']}")).json()["status"] == "issuing"
    clock.travel(timedelta(seconds=31))
    await tasks.query_issuing(world.runtime)
    issued = await world.final(int(str(made["id"])))
    assert issued["status"] == "issued"


async def test_resend_by_email_to_another_address(world: World) -> None:
    made = await world.request([await world.order()])
    issued = await world.final(made.json()["id"])
    assert world.inbox.messages == []  # no address given
    nowhere = await world.post(f"/api/v1/invoices/{issued['id']}/email", {})
    assert (nowhere.status_code, nowhere.json()["code"]) == (422, "no_email")
    sent = await world.post(f"/api/v1/invoices/{issued['id']}/email", {"email": "boss@example.com"})
    assert sent.status_code == 202
    await world.settle()
    assert world.inbox.recipients == [["boss@example.com"]]
    [msg] = world.inbox.messages
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_content()[:5] == b"%PDF-"
    shown = (await world.get(f"/api/v1/invoices/{issued['id']}")).json()
    assert shown["emailed_at"] is not None
    assert shown["email"] is None  # the invoice keeps its own (none); the one-off is not stored
