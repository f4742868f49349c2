"""The WeCom client against its wire-exact sandbox: token, mark_tag, id conversion, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from forecourt.integrations.wecom import WeComClient, WeComError, WeComSandbox
from forecourt.integrations.wecom.client import (
    CONCURRENCY_LIMIT,
    INVALID_CREDENTIAL,
    INVALID_TAG,
    NOT_CONTACT,
)

CORP, SECRET, STAFF = "ww0123456789abcdef", "s3cret-for-tests", "crm-bot"
TAGS = ("etSilver", "etGold")


@pytest.fixture
def sandbox() -> WeComSandbox:
    """A corp with one follow user and two tags."""
    return WeComSandbox(corpid=CORP, secret=SECRET, follow_users=(STAFF,), tags=TAGS)


@pytest.fixture
async def client(sandbox: WeComSandbox) -> AsyncIterator[WeComClient]:
    """The real client talking to the sandbox in-process."""
    api = WeComClient(
        corpid=CORP,
        secret=SECRET,
        base_url="http://wecom",
        transport=httpx.ASGITransport(app=sandbox.app),
    )
    yield api
    await api.aclose()


async def test_mark_tag_adds_and_removes(sandbox: WeComSandbox, client: WeComClient) -> None:
    external = sandbox.add_customer("o-driver-1")
    assert await client.external_userid(openid="o-driver-1", unionid=None) == external
    await client.mark_tag(
        userid=STAFF, external_userid=external, add_tag=["etSilver"], remove_tag=[]
    )
    await client.mark_tag(
        userid=STAFF, external_userid=external, add_tag=["etGold"], remove_tag=["etSilver"]
    )
    await client.mark_tag(  # the same again is harmless
        userid=STAFF, external_userid=external, add_tag=["etGold"], remove_tag=["etSilver"]
    )
    assert sandbox.tags_of(external) == {"etGold"}
    assert sandbox.count("gettoken") == 1  # the token is cached
    assert sandbox.calls[-1] == (
        "mark_tag",
        {
            "userid": STAFF,
            "external_userid": external,
            "add_tag": ["etGold"],
            "remove_tag": ["etSilver"],
        },
    )


async def test_expired_token_is_renewed_once(sandbox: WeComSandbox, client: WeComClient) -> None:
    external = sandbox.add_customer("o-driver-2")
    await client.mark_tag(userid=STAFF, external_userid=external, add_tag=["etGold"], remove_tag=[])
    sandbox.expire_tokens()
    await client.mark_tag(
        userid=STAFF, external_userid=external, add_tag=["etSilver"], remove_tag=[]
    )
    assert sandbox.count("gettoken") == 2
    assert sandbox.tags_of(external) == {"etGold", "etSilver"}


async def test_errors_are_classified(sandbox: WeComSandbox, client: WeComClient) -> None:
    external = sandbox.add_customer("o-driver-3")
    sandbox.fail_next(CONCURRENCY_LIMIT)
    with pytest.raises(WeComError) as limited:
        await client.mark_tag(
            userid=STAFF, external_userid=external, add_tag=["etGold"], remove_tag=[]
        )
    assert (limited.value.errcode, limited.value.retryable) == (CONCURRENCY_LIMIT, True)
    with pytest.raises(WeComError) as bad_tag:
        await client.mark_tag(
            userid=STAFF, external_userid=external, add_tag=["etNope"], remove_tag=[]
        )
    assert (bad_tag.value.errcode, bad_tag.value.retryable) == (INVALID_TAG, False)
    assert "open.work.weixin.qq.com/devtool/query?e=40068" in bad_tag.value.errmsg
    sandbox.relations.clear()
    with pytest.raises(WeComError) as gone:
        await client.mark_tag(
            userid=STAFF, external_userid=external, add_tag=["etGold"], remove_tag=[]
        )
    assert gone.value.errcode == NOT_CONTACT
    assert await client.external_userid(openid="o-stranger", unionid="u-1") is None


async def test_wrong_secret_and_unreachable(sandbox: WeComSandbox) -> None:
    transport = httpx.ASGITransport(app=sandbox.app)
    wrong = WeComClient(corpid=CORP, secret="nope", base_url="http://wecom", transport=transport)
    with pytest.raises(WeComError) as refused:
        await wrong.mark_tag(userid=STAFF, external_userid="wmx", add_tag=["etGold"], remove_tag=[])
    assert refused.value.errcode == INVALID_CREDENTIAL
    await wrong.aclose()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    offline = WeComClient(
        corpid=CORP, secret=SECRET, base_url="http://wecom", transport=httpx.MockTransport(down)
    )
    with pytest.raises(WeComError) as unreachable:
        await offline.external_userid(openid="o-1", unionid=None)
    assert (unreachable.value.errcode, unreachable.value.retryable) == (None, True)
    await offline.aclose()


async def test_sandbox_wire_format(sandbox: WeComSandbox) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app), base_url="http://wecom"
    ) as http:
        token = (
            await http.get("/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET})
        ).json()
        assert (token["errcode"], token["errmsg"], token["expires_in"]) == (0, "ok", 7200)
        missing = await http.post("/cgi-bin/externalcontact/mark_tag", json={})
        assert (missing.status_code, missing.json()["errcode"]) == (200, 41001)
        empty = await http.post(
            "/cgi-bin/externalcontact/mark_tag",
            params={"access_token": token["access_token"]},
            json={"userid": STAFF, "external_userid": "x", "add_tag": [], "remove_tag": []},
        )
        assert empty.json()["errcode"] == 40058
        wrong_corp = await http.get(
            "/cgi-bin/gettoken", params={"corpid": "x", "corpsecret": SECRET}
        )
        assert wrong_corp.json()["errcode"] == 40013
