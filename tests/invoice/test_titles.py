"""Saved buyer titles, the public tax-id check, and e-mail addresses kept out of logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from forecourt.invoice.models import Invoice, InvoiceTitle
from tests.fixtures.auth import make_member, member_headers
from tests.invoice.conftest import World

TITLES = "/api/v1/invoice-titles"
COMPANY = {"kind": "company", "name": "小米科技有限责任公司", "tax_id": "91110108551385082q"}


async def test_tax_id_check_is_public(world: World) -> None:
    ok = await world.http.get("/api/v1/invoices/tax-id/91110108551385082Q")
    assert (ok.status_code, ok.json()) == (200, {"valid": True, "reason": None})
    bad = await world.http.get("/api/v1/invoices/tax-id/91110108551385O82Q")
    assert bad.json() == {
        "valid": False,
        "reason": "charset: character 'O' at position 15 is not allowed "
        "(digits and capitals without I, O, S, V, Z)",
    }


async def test_save_list_update_delete_titles(world: World) -> None:
    first = await world.post(TITLES, {**COMPANY, "email": "Finance@Xiaomi.example"})
    assert first.status_code == 201, first.text
    company = first.json()
    assert (company["tax_id"], company["is_default"], company["email"]) == (
        "91110108551385082Q",
        True,
        "Finance@xiaomi.example",
    )
    person = (
        await world.post(TITLES, {"kind": "personal", "name": "韩梅梅", "is_default": True})
    ).json()
    listed = (await world.get(TITLES)).json()
    assert [(t["id"], t["is_default"]) for t in listed] == [
        (person["id"], True),
        (company["id"], False),
    ]
    changed = await world.http.put(
        f"{TITLES}/{company['id']}",
        json={**COMPANY, "name": "小米科技", "is_default": True},
        headers=world.headers,
    )
    assert (changed.status_code, changed.json()["name"], changed.json()["email"]) == (
        200,
        "小米科技",
        None,
    )
    assert [t["is_default"] for t in (await world.get(TITLES)).json()] == [True, False]
    gone = await world.http.delete(f"{TITLES}/{person['id']}", headers=world.headers)
    assert gone.status_code == 204
    assert [t["id"] for t in (await world.get(TITLES)).json()] == [company["id"]]
    async with world.runtime.db.read_only() as session:
        stored = (await session.scalars(select(InvoiceTitle.email_cipher))).all()
    assert stored == [None]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"kind": "company", "name": "某公司", "tax_id": "91110108551385082X"},
            "invalid_tax_id",
            "tax_id",
        ),
        ({"kind": "company", "name": "某公司"}, "invalid_tax_id", "tax_id"),
        (
            {"kind": "personal", "name": "李雷", "tax_id": "91110108551385082Q"},
            "unprocessable",
            "tax_id",
        ),
        ({"kind": "personal", "name": "李雷", "email": "li@"}, "invalid_email", "email"),
        ({"kind": "personal", "name": "   "}, "unprocessable", "name"),
    ],
)
async def test_bad_titles_are_refused(
    world: World, body: dict[str, str], code: str, field: str
) -> None:
    resp = await world.post(TITLES, body)
    assert resp.status_code == 422
    assert resp.json()["code"] == code
    assert resp.json()["errors"][0]["field"] == field


async def test_titles_are_private(world: World) -> None:
    mine = (await world.post(TITLES, COMPANY)).json()
    other = await make_member(world.runtime, openid="o-someone-else")
    headers = member_headers(world.runtime, other.id)
    assert (await world.get(TITLES, headers=headers)).json() == []
    peek = await world.http.put(f"{TITLES}/{mine['id']}", json=COMPANY, headers=headers)
    assert (peek.status_code, peek.json()["code"]) == (404, "invoice_title_not_found")
    use = await world.post(
        "/api/v1/invoices",
        {"order_ids": [await world.order(member_id=other.id)], "title_id": mine["id"]},
        headers=headers,
    )
    assert (use.status_code, use.json()["code"]) == (404, "invoice_title_not_found")
    anonymous = await world.http.get(TITLES)
    assert anonymous.status_code == 401


async def test_saved_title_email_is_used_and_never_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    title = (await world.post(TITLES, {**COMPANY, "email": "ledger.owner@corp.example"})).json()
    made = await world.post(
        "/api/v1/invoices", {"order_ids": [await world.order()], "title_id": title["id"]}
    )
    assert made.status_code == 201, made.text
    assert made.json()["email"] == "l***@corp.example"
    assert (made.json()["buyer_name"], made.json()["buyer_tax_id"]) == (
        "小米科技有限责任公司",
        "91110108551385082Q",
    )
    await world.final(made.json()["id"])
    assert world.inbox.recipients == [["ledger.owner@corp.example"]]
    ours = [r for r in caplog.records if not r.name.startswith("mail.")]  # mail.*: test SMTP server
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    leaks = [r.getMessage() for r in ours if "ledger.owner@" in f"{r.getMessage()} {r.__dict__}"]
    assert leaks == []
    assert "l***@corp.example" in logged
    assert "ledger.owner@corp.example" not in logged
    async with world.runtime.db.read_only() as session:
        cipher = (await session.scalars(select(Invoice.email_cipher))).one()
    assert cipher is not None
    assert b"ledger.owner" not in cipher


async def test_routes_need_a_driver(world: World) -> None:
    for method, path in (
        ("GET", "/api/v1/invoices"),
        ("POST", "/api/v1/invoices"),
        ("GET", "/api/v1/invoices/1/pdf"),
    ):
        resp = await world.http.request(method, path, json={})
        assert resp.status_code == 401, (method, path)
    assert isinstance(world.http, httpx.AsyncClient)
