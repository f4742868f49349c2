"""The SMS gateway client and its sandbox: signatures, replay protection, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import orjson
import pytest

from forecourt.integrations.sms import SmsClient, SmsError, SmsSandbox
from forecourt.integrations.sms.client import sign
from forecourt.kit import clock

KEY = "test-api-key"


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[SmsClient, SmsSandbox]]:
    """A client wired to a fresh sandbox."""
    sandbox = SmsSandbox(api_key=KEY)
    client = SmsClient(
        api_key=KEY, base_url="http://sms", transport=httpx.ASGITransport(app=sandbox.app)
    )
    yield client, sandbox
    await client.aclose()


async def test_send_records_the_message(gateway: tuple[SmsClient, SmsSandbox]) -> None:
    client, sandbox = gateway
    message_id = await client.send(
        phone="13800138000", template="login_code", params={"code": "123456", "minutes": "5"}
    )
    [sent] = sandbox.messages("13800138000")
    assert sent.message_id == message_id
    assert message_id.startswith("sms_")
    assert sent.text == "【Forecourt】您的登录验证码是123456，5分钟内有效，请勿泄露。"
    assert sandbox.last_code("13800138000") == "123456"
    assert sandbox.last_code("13800138001") is None
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sms") as raw:
        listed = await raw.get("/sandbox/messages", params={"phone": "13800138000"})
    assert [m["params"] for m in listed.json()["messages"]] == [{"code": "123456", "minutes": "5"}]


async def test_wrong_key_is_refused(gateway: tuple[SmsClient, SmsSandbox]) -> None:
    _, sandbox = gateway
    wrong = SmsClient(
        api_key="other", base_url="http://sms", transport=httpx.ASGITransport(app=sandbox.app)
    )
    try:
        with pytest.raises(SmsError) as refused:
            await wrong.send(phone="13800138000", template="login_code", params={"code": "1"})
        assert (refused.value.status, refused.value.error) == (401, "bad_signature")
    finally:
        await wrong.aclose()
    assert list(sandbox.sent) == []


async def _raw_send(
    sandbox: SmsSandbox, body: bytes, *, timestamp: str, nonce: str
) -> httpx.Response:
    headers = {
        "X-Api-Timestamp": timestamp,
        "X-Api-Nonce": nonce,
        "X-Api-Signature": sign(KEY, timestamp=timestamp, nonce=nonce, body=body),
    }
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sms") as raw:
        return await raw.post("/v1/sms/send", content=body, headers=headers)


async def test_replayed_and_stale_requests_are_refused(
    gateway: tuple[SmsClient, SmsSandbox],
) -> None:
    _, sandbox = gateway
    body = orjson.dumps(
        {"phone": "13800138000", "template": "login_code", "params": {"code": "1", "minutes": "5"}}
    )
    now = str(int(clock.now().timestamp()))
    assert (await _raw_send(sandbox, body, timestamp=now, nonce="n1")).status_code == 200
    replay = await _raw_send(sandbox, body, timestamp=now, nonce="n1")
    assert (replay.status_code, replay.json()["error"]) == (409, "replayed_nonce")
    old = str(int((clock.now() - timedelta(minutes=6)).timestamp()))
    stale = await _raw_send(sandbox, body, timestamp=old, nonce="n2")
    assert (stale.status_code, stale.json()["error"]) == (401, "stale_timestamp")
    assert len(sandbox.sent) == 1


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"phone": "12345", "template": "login_code", "params": {}}, "invalid_phone"),
        ({"phone": "13800138000", "template": "promo", "params": {}}, "unknown_template"),
        ({"phone": "13800138000", "template": "login_code", "params": {}}, "missing_param"),
    ],
)
async def test_bad_requests(
    gateway: tuple[SmsClient, SmsSandbox], payload: dict[str, object], error: str
) -> None:
    _, sandbox = gateway
    now = str(int(clock.now().timestamp()))
    resp = await _raw_send(sandbox, orjson.dumps(payload), timestamp=now, nonce=error)
    assert (resp.status_code, resp.json()["error"]) == (400, error)


async def test_injected_failure(gateway: tuple[SmsClient, SmsSandbox]) -> None:
    client, sandbox = gateway
    sandbox.fail_next(status=429, error="throttled")
    with pytest.raises(SmsError) as refused:
        await client.send(
            phone="13800138000", template="login_code", params={"code": "1", "minutes": "5"}
        )
    assert (refused.value.status, refused.value.error) == (429, "throttled")
    assert await client.send(
        phone="13800138000", template="login_code", params={"code": "2", "minutes": "5"}
    )
