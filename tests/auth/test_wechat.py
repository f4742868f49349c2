"""WeChat login: the real client against the wire-exact in-process sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import orjson
import pytest

from forecourt.integrations.wechat import WeChatClient, WeChatError, WeChatSandbox
from forecourt.kit import clock
from forecourt.runtime import Runtime
from tests.fixtures.auth import bearer

LOGIN = "/api/v1/auth/wechat/login"
OPENID = "oTest0000000000000000000001"


def _sandbox(runtime: Runtime) -> WeChatSandbox:
    assert runtime.wechat_sandbox is not None
    return runtime.wechat_sandbox


@pytest.fixture
async def wx() -> AsyncIterator[tuple[WeChatClient, WeChatSandbox]]:
    """A client wired to a fresh sandbox, without the rest of the app."""
    sandbox = WeChatSandbox(appid="wx-test", secret="s3cret")
    client = WeChatClient(
        appid="wx-test",
        secret="s3cret",
        base_url="http://wechat",
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    yield client, sandbox
    await client.aclose()


async def test_first_login_creates_the_member(client: httpx.AsyncClient, runtime: Runtime) -> None:
    code = _sandbox(runtime).mint_code(OPENID, unionid="uTest1")
    resp = await client.post(LOGIN, json={"code": code})
    assert resp.status_code == 200
    body = resp.json()
    assert body["created"] is True
    member = body["member"]
    assert member == {
        "id": member["id"],
        "phone_masked": None,
        "has_wechat": True,
        "created_at": member["created_at"],
    }
    assert (await client.get("/api/v1/me", headers=bearer(body["access_token"]))).json() == member

    again = await client.post(LOGIN, json={"code": _sandbox(runtime).mint_code(OPENID)})
    assert again.json()["created"] is False
    assert again.json()["member"]["id"] == member["id"]


@pytest.mark.parametrize(
    ("errcode", "status", "code", "retry_after"),
    [
        (45011, 429, "wechat_rate_limited", "60"),
        (-1, 503, "wechat_unavailable", None),
        (40226, 403, "wechat_high_risk", None),
    ],
)
async def test_wechat_refusals_map_to_stable_codes(
    client: httpx.AsyncClient,
    runtime: Runtime,
    errcode: int,
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    js_code = _sandbox(runtime).mint_code(OPENID)
    _sandbox(runtime).fail_next(errcode)
    resp = await client.post(LOGIN, json={"code": js_code})
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == code
    assert resp.headers.get("retry-after") == retry_after


async def test_high_risk_user(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _sandbox(runtime).flag_high_risk(OPENID)
    resp = await client.post(LOGIN, json={"code": _sandbox(runtime).mint_code(OPENID)})
    assert resp.status_code == 403
    assert resp.json()["code"] == "wechat_high_risk"
    assert resp.json()["detail"] == "WeChat blocked this login as high risk (40226)"


async def test_used_unknown_and_expired_codes(client: httpx.AsyncClient, runtime: Runtime) -> None:
    code = _sandbox(runtime).mint_code(OPENID)
    assert (await client.post(LOGIN, json={"code": code})).status_code == 200
    reused = await client.post(LOGIN, json={"code": code})
    assert reused.status_code == 400
    assert reused.json()["code"] == "wechat_code_invalid"
    assert reused.json()["detail"] == (
        "WeChat rejected the login code (unknown, expired or already used); call wx.login again"
    )
    assert reused.json()["errors"] == [
        {"field": "body.code", "reason": "rejected by WeChat (40163)"}
    ]
    unknown = await client.post(LOGIN, json={"code": "not-a-real-code"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == [
        {"field": "body.code", "reason": "rejected by WeChat (40029)"}
    ]
    stale = _sandbox(runtime).mint_code(OPENID)
    clock.travel(timedelta(minutes=5, seconds=1))
    expired = await client.post(LOGIN, json={"code": stale})
    assert expired.json()["errors"] == [
        {"field": "body.code", "reason": "rejected by WeChat (40029)"}
    ]


async def test_empty_code_is_a_validation_error(client: httpx.AsyncClient) -> None:
    resp = await client.post(LOGIN, json={"code": ""})
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        {"field": "body.code", "reason": "String should have at least 1 character"}
    ]


async def test_login_rate_limited_per_ip(client: httpx.AsyncClient, runtime: Runtime) -> None:
    runtime.settings.login_per_ip_per_hour = 1
    await client.post(LOGIN, json={"code": "x"})
    resp = await client.post(LOGIN, json={"code": _sandbox(runtime).mint_code(OPENID)})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3600"


async def test_demo_sandbox_code_route(client: httpx.AsyncClient, runtime: Runtime) -> None:
    minted = await client.post("/api/v1/auth/wechat/sandbox-code", json={"openid": OPENID})
    assert minted.status_code == 200
    assert minted.json()["openid"] == OPENID
    login = await client.post(LOGIN, json={"code": minted.json()["js_code"]})
    assert login.status_code == 200
    runtime.settings.show_sandbox_sms_code = False
    hidden = await client.post("/api/v1/auth/wechat/sandbox-code", json={})
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "not_found"


async def test_sandbox_speaks_wechat_wire_format(
    wx: tuple[WeChatClient, WeChatSandbox],
) -> None:
    _, sandbox = wx
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wechat") as raw:
        params = {
            "appid": "wx-test",
            "secret": "s3cret",
            "js_code": sandbox.mint_code(OPENID, unionid="u1"),
            "grant_type": "authorization_code",
        }
        ok = await raw.get("/sns/jscode2session", params=params)
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("text/plain")
        body = orjson.loads(ok.content)
        assert sorted(body) == ["openid", "session_key", "unionid"]
        assert (body["openid"], body["unionid"]) == (OPENID, "u1")
        used = orjson.loads((await raw.get("/sns/jscode2session", params=params)).content)
        assert used["errcode"] == 40163
        assert used["errmsg"].startswith("code been used, rid: ")
        bad_secret = await raw.get("/sns/jscode2session", params={**params, "secret": "nope"})
        assert bad_secret.status_code == 200
        assert orjson.loads(bad_secret.content)["errcode"] == 40125
        bad_app = await raw.get("/sns/jscode2session", params={**params, "appid": "wx-other"})
        assert orjson.loads(bad_app.content)["errcode"] == 40013
        minted = await raw.post("/sandbox/jscode", json={"openid": "oMinted000000000000000000001"})
        assert minted.json()["openid"] == "oMinted000000000000000000001"


async def test_client_code2session_and_errors(wx: tuple[WeChatClient, WeChatSandbox]) -> None:
    client, sandbox = wx
    session = await client.code2session(sandbox.mint_code(OPENID))
    assert session.openid == OPENID
    assert session.unionid is None
    assert session.session_key not in repr(session)
    with pytest.raises(WeChatError) as refused:
        await client.code2session("unknown")
    assert refused.value.errcode == 40029
    assert refused.value.errmsg.startswith("invalid code, rid: ")


async def test_client_wrong_secret(wx: tuple[WeChatClient, WeChatSandbox]) -> None:
    _, sandbox = wx
    wrong = WeChatClient(
        appid="wx-test",
        secret="wrong",
        base_url="http://wechat",
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    try:
        with pytest.raises(WeChatError) as refused:
            await wrong.code2session(sandbox.mint_code(OPENID))
        assert refused.value.errcode == 40125
    finally:
        await wrong.aclose()


async def test_client_unreachable() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = WeChatClient(
        appid="a", secret="b", base_url="http://wechat", transport=httpx.MockTransport(boom)
    )
    try:
        with pytest.raises(WeChatError) as failed:
            await client.code2session("x")
        assert failed.value.errcode is None
    finally:
        await client.aclose()


async def test_phone_number_exchange(wx: tuple[WeChatClient, WeChatSandbox]) -> None:
    client, sandbox = wx
    phone = await client.phone_number(sandbox.mint_phone_code("13912345678"))
    assert (phone.phone_number, phone.pure_phone_number, phone.country_code) == (
        "13912345678",
        "13912345678",
        "86",
    )
    assert "13912345678" not in repr(phone)
    code = sandbox.mint_phone_code("13912345679")
    assert (await client.phone_number(code)).pure_phone_number == "13912345679"
    assert sandbox.calls.count("stable_token") == 1  # the access token is cached
    with pytest.raises(WeChatError) as used:
        await client.phone_number(code)
    assert used.value.errcode == 40029


async def test_phone_number_renews_a_stale_access_token(
    wx: tuple[WeChatClient, WeChatSandbox],
) -> None:
    client, sandbox = wx
    await client.phone_number(sandbox.mint_phone_code("13912345678"))
    clock.travel(timedelta(hours=2, seconds=1))
    assert (await client.phone_number(sandbox.mint_phone_code("13912345678"))).country_code == "86"
    assert sandbox.calls.count("stable_token") == 2


async def test_phone_number_retries_once_on_a_revoked_access_token(
    wx: tuple[WeChatClient, WeChatSandbox],
) -> None:
    client, sandbox = wx
    await client.phone_number(sandbox.mint_phone_code("13912345678"))
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wechat") as other:
        forced = await other.post(
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": "wx-test",
                "secret": "s3cret",
                "force_refresh": True,
            },
        )
    assert forced.json()["expires_in"] == 7200
    phone = await client.phone_number(sandbox.mint_phone_code("13912345670"))
    assert phone.pure_phone_number == "13912345670"
    assert list(sandbox.calls) == [
        "stable_token",
        "getuserphonenumber",
        "stable_token",
        "getuserphonenumber",
        "stable_token",
        "getuserphonenumber",
    ]
