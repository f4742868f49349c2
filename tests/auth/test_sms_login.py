"""Drivers log in with phone + SMS code against the in-process SMS gateway sandbox."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from forecourt.app import create_app
from forecourt.auth.models import Member, SmsCode
from forecourt.kit import clock, phones
from forecourt.runtime import Runtime
from tests.fixtures.auth import bearer, next_phone

SEND = "/api/v1/auth/sms/send"
LOGIN = "/api/v1/auth/sms/login"
PHONE = "13800138000"


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def _send(client: httpx.AsyncClient, phone: str = PHONE) -> str:
    resp = await client.post(SEND, json={"phone": phone})
    assert resp.status_code == 200, resp.text
    code: str = resp.json()["sandbox_code"]
    return code


async def _login(client: httpx.AsyncClient, code: str, phone: str = PHONE) -> httpx.Response:
    return await client.post(LOGIN, json={"phone": phone, "code": code})


def _problem(resp: httpx.Response) -> dict[str, Any]:
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    body.pop("request_id", None)
    return body


async def test_first_login_creates_the_member(client: httpx.AsyncClient, runtime: Runtime) -> None:
    sent = await client.post(SEND, json={"phone": "+86 138-0013-8000"})
    assert sent.status_code == 200
    code = sent.json()["sandbox_code"]
    assert sent.json() == {"phone_masked": "138****8000", "expires_in": 300, "sandbox_code": code}
    assert len(code) == 6
    assert code.isdigit()
    assert runtime.sms_sandbox is not None
    [message] = runtime.sms_sandbox.messages(PHONE)
    assert message.template == "login_code"
    assert message.params == {"code": code, "minutes": "5"}
    assert message.text == f"【Forecourt】您的登录验证码是{code}，5分钟内有效，请勿泄露。"

    resp = await _login(client, code)
    assert resp.status_code == 200
    body = resp.json()
    member = body["member"]
    assert body["created"] is True
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_expires_in"] == 30 * 24 * 3600
    assert member == {
        "id": member["id"],
        "phone_masked": "138****8000",
        "has_wechat": False,
        "created_at": member["created_at"],
    }
    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == member

    # A second login finds the same member.
    again = await _login(client, await _send(client))
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["member"]["id"] == member["id"]


async def test_phone_is_stored_encrypted(client: httpx.AsyncClient, runtime: Runtime) -> None:
    code = await _send(client)
    member_id = (await _login(client, code)).json()["member"]["id"]
    async with runtime.db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT phone_cipher, phone_hash, phone_masked FROM members WHERE id = :id"),
                {"id": member_id},
            )
        ).one()
        codes = (await conn.execute(text("SELECT phone_hash, code_hash FROM sms_codes"))).all()
    cipher = bytes(row.phone_cipher)
    assert PHONE.encode() not in cipher
    assert PHONE not in cipher.hex()
    assert phones.decrypt(runtime.secrets.data_key, cipher) == PHONE
    assert row.phone_hash == phones.blind_index(runtime.secrets.data_key, PHONE)
    assert row.phone_masked == "138****8000"
    assert len(codes) == 1
    assert PHONE not in "".join(codes[0])
    assert code not in codes[0].code_hash


async def test_wrong_code_counts_and_right_code_still_works(client: httpx.AsyncClient) -> None:
    code = await _send(client)
    resp = await _login(client, _wrong(code))
    assert resp.status_code == 400
    assert _problem(resp) == {
        "type": "https://forecourt.dev/problems/sms_code_invalid",
        "title": "Wrong SMS code",
        "status": 400,
        "detail": "wrong code, 4 attempts left",
        "code": "sms_code_invalid",
        "instance": LOGIN,
        "errors": [{"field": "body.code", "reason": "wrong code, 4 attempts left"}],
    }
    assert (await _login(client, code)).status_code == 200


async def test_attempts_exhausted(client: httpx.AsyncClient, runtime: Runtime) -> None:
    code = await _send(client)
    reasons = []
    for _ in range(5):
        resp = await _login(client, _wrong(code))
        reasons.append(resp.json()["detail"])
    assert reasons == [
        "wrong code, 4 attempts left",
        "wrong code, 3 attempts left",
        "wrong code, 2 attempts left",
        "wrong code, 1 attempt left",
        "wrong code, 0 attempts left",
    ]
    resp = await _login(client, code)
    assert resp.status_code == 400
    assert resp.json()["code"] == "sms_code_exhausted"
    assert resp.json()["errors"] == [{"field": "body.code", "reason": "too many wrong attempts"}]
    async with runtime.db.read_only() as session:
        assert await session.scalar(select(SmsCode.attempts)) == 5
        assert await session.scalar(select(func.count()).select_from(Member)) == 0
    # A new code starts afresh.
    assert (await _login(client, await _send(client))).status_code == 200


async def test_expired_code(client: httpx.AsyncClient) -> None:
    code = await _send(client)
    clock.travel(timedelta(seconds=301))
    resp = await _login(client, code)
    assert resp.status_code == 400
    assert resp.json()["code"] == "sms_code_expired"
    assert resp.json()["errors"] == [{"field": "body.code", "reason": "expired"}]


async def test_code_works_once(client: httpx.AsyncClient) -> None:
    code = await _send(client)
    assert (await _login(client, code)).status_code == 200
    resp = await _login(client, code)
    assert resp.status_code == 400
    assert resp.json()["code"] == "sms_code_used"
    assert resp.json()["detail"] == "this code was already used; request a new one"


async def test_only_the_newest_code_counts(client: httpx.AsyncClient) -> None:
    old = await _send(client)
    new = await _send(client)
    if old != new:
        assert (await _login(client, old)).json()["code"] == "sms_code_invalid"
    assert (await _login(client, new)).status_code == 200


async def test_no_code_sent(client: httpx.AsyncClient) -> None:
    resp = await _login(client, "123456")
    assert resp.status_code == 400
    assert resp.json()["code"] == "sms_code_invalid"
    assert resp.json()["detail"] == "no code was sent to this number"


async def test_send_rate_limited_per_phone(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await _send(client)
    resp = await client.post(SEND, json={"phone": PHONE})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3600"
    assert _problem(resp) == {
        "type": "https://forecourt.dev/problems/rate_limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "too many SMS codes for this phone number; try again in 3600 s",
        "code": "rate_limited",
        "instance": SEND,
    }
    # Another phone from the same address is fine; the limit lifts after the window.
    await _send(client, next_phone())
    clock.travel(timedelta(seconds=3601))
    await _send(client)


async def test_send_rate_limited_per_ip(client: httpx.AsyncClient, runtime: Runtime) -> None:
    runtime.settings.sms_per_ip_per_hour = 3
    for _ in range(3):
        await _send(client, next_phone())
    resp = await client.post(SEND, json={"phone": next_phone()})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3600"
    assert resp.json()["detail"] == (
        "too many SMS codes requested from this address; try again in 3600 s"
    )
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
        assert (await other.post(SEND, json={"phone": next_phone()})).status_code == 200


async def test_login_rate_limited_per_phone(client: httpx.AsyncClient, runtime: Runtime) -> None:
    runtime.settings.login_per_phone_per_hour = 2
    code = await _send(client)
    await _login(client, _wrong(code))
    await _login(client, _wrong(code))
    resp = await _login(client, code)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3600"
    assert resp.json()["detail"] == (
        "too many login attempts for this phone number; try again in 3600 s"
    )


async def test_login_rate_limited_per_ip(client: httpx.AsyncClient, runtime: Runtime) -> None:
    runtime.settings.login_per_ip_per_hour = 2
    for _ in range(2):
        await _login(client, "123456", next_phone())
    resp = await _login(client, "123456", next_phone())
    assert resp.status_code == 429
    assert resp.json()["detail"] == "too many login attempts from this address; try again in 3600 s"


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        (
            SEND,
            {"phone": "12345678901"},
            [
                {
                    "field": "body.phone",
                    "reason": "not a mainland China mobile number (11 digits starting 13-19)",
                }
            ],
        ),
        (SEND, {}, [{"field": "body.phone", "reason": "Field required"}]),
        (
            SEND,
            {"phone": PHONE, "name": "x"},
            [{"field": "body.name", "reason": "Extra inputs are not permitted"}],
        ),
        (
            LOGIN,
            {"phone": PHONE, "code": "12ab56"},
            [{"field": "body.code", "reason": "String should match pattern '^[0-9]{6}$'"}],
        ),
    ],
)
async def test_validation_names_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, str], errors: list[dict[str, str]]
) -> None:
    resp = await client.post(path, json=body)
    assert resp.status_code == 422
    assert resp.json()["code"] == "validation_error"
    assert resp.json()["errors"] == errors


async def test_gateway_failure_leaves_nothing_behind(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await _send(client)
    assert runtime.sms_sandbox is not None
    runtime.sms_sandbox.fail_next(status=503, error="unavailable")
    resp = await client.post(SEND, json={"phone": PHONE})
    assert resp.status_code == 503
    assert resp.json()["code"] == "sms_unavailable"
    assert resp.json()["detail"] == "the SMS gateway refused the message (unavailable)"
    async with runtime.db.read_only() as session:
        assert await session.scalar(select(func.count()).select_from(SmsCode)) == 1
    assert (await _login(client, first)).status_code == 200


async def test_sandbox_code_hidden_unless_enabled(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    runtime.settings.show_sandbox_sms_code = False
    resp = await client.post(SEND, json={"phone": PHONE})
    assert resp.json() == {"phone_masked": "138****8000", "expires_in": 300}
    assert runtime.sms_sandbox is not None
    code = runtime.sms_sandbox.last_code(PHONE)
    assert code is not None
    assert (await _login(client, code)).status_code == 200


async def test_no_plaintext_phone_or_code_in_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = await _send(client)
    await _login(client, _wrong(code))
    await _login(client, code)
    assert caplog.records
    for record in caplog.records:
        dump = repr(record.__dict__) + record.getMessage()
        assert PHONE not in dump
        assert f"'{code}'" not in dump
    assert any(getattr(r, "phone", None) == "138****8000" for r in caplog.records)
