"""Access tokens, refresh rotation, reuse detection and logout."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from forecourt.auth.models import RefreshToken
from forecourt.auth.tokens import refresh_token_id
from forecourt.kit import clock
from forecourt.runtime import Runtime
from tests.fixtures.auth import bearer, make_staff, sms_login, staff_login

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


async def test_rotation_and_reuse_detection(client: httpx.AsyncClient, runtime: Runtime) -> None:
    login = await sms_login(client)
    first = login["refresh_token"]

    rotated = await client.post(REFRESH, json={"refresh_token": first})
    assert rotated.status_code == 200
    pair = rotated.json()
    assert sorted(pair) == [
        "access_token",
        "expires_in",
        "refresh_expires_in",
        "refresh_token",
        "token_type",
    ]
    assert pair["refresh_token"] != first
    assert pair["expires_in"] == 900
    me = await client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert me.json()["id"] == login["member"]["id"]

    # The old token comes back: the whole family dies, including the new token.
    reused = await client.post(REFRESH, json={"refresh_token": first})
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_reused"
    assert reused.json()["detail"] == "this refresh token was already used; log in again"
    child = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert child.status_code == 401
    assert child.json()["code"] == "refresh_revoked"

    async with runtime.db.read_only() as session:
        rows = list(await session.scalars(select(RefreshToken).order_by(RefreshToken.created_at)))
        assert len(rows) == 2
        assert len({r.family for r in rows}) == 1
        assert all(r.revoked_at is not None for r in rows)
        assert rows[0].used_at is not None
        assert rows[1].used_at is None
        assert {r.subject for r in rows} == {f"member:{login['member']['id']}"}


async def test_refresh_tokens_are_stored_hashed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = (await sms_login(client))["refresh_token"]
    async with runtime.db.read_only() as session:
        [row] = list(await session.scalars(select(RefreshToken)))
        assert row.id == refresh_token_id(token)
        assert token not in (row.id, row.family, row.subject)


async def test_unknown_and_expired_refresh_tokens(client: httpx.AsyncClient) -> None:
    unknown = await client.post(REFRESH, json={"refresh_token": "nope"})
    assert unknown.status_code == 401
    assert unknown.json()["code"] == "refresh_invalid"
    token = (await sms_login(client))["refresh_token"]
    clock.travel(timedelta(days=30, seconds=1))
    expired = await client.post(REFRESH, json={"refresh_token": token})
    assert expired.status_code == 401
    assert expired.json()["code"] == "refresh_expired"


async def test_logout_revokes(client: httpx.AsyncClient) -> None:
    token = (await sms_login(client))["refresh_token"]
    out = await client.post(LOGOUT, json={"refresh_token": token})
    assert out.status_code == 204
    assert out.content == b""
    after = await client.post(REFRESH, json={"refresh_token": token})
    assert after.json()["code"] == "refresh_revoked"
    assert (await client.post(LOGOUT, json={"refresh_token": "unknown"})).status_code == 204


async def test_access_token_expires(client: httpx.AsyncClient) -> None:
    access = (await sms_login(client))["access_token"]
    clock.travel(timedelta(seconds=901))
    resp = await client.get("/api/v1/me", headers=bearer(access))
    assert resp.status_code == 401
    assert resp.json()["detail"] == "access token expired"


async def test_missing_or_bad_token(client: httpx.AsyncClient) -> None:
    none = await client.get("/api/v1/me")
    assert none.status_code == 401
    assert none.json()["code"] == "unauthorized"
    bad = await client.get("/api/v1/me", headers=bearer("not.a.jwt"))
    assert bad.status_code == 401
    assert bad.json()["detail"] == "invalid access token"


async def test_staff_refresh_keeps_role_and_stops_when_disabled(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await make_staff(runtime, username="boss")
    other = await make_staff(runtime, username="second")
    login = await staff_login(client, username="second")
    rotated = await client.post(REFRESH, json={"refresh_token": login["refresh_token"]})
    assert rotated.status_code == 200
    me = await client.get("/api/v1/staff/me", headers=bearer(rotated.json()["access_token"]))
    assert me.json()["role"] == "hq_admin"

    boss = await staff_login(client, username=admin.username)
    off = await client.patch(
        f"/api/v1/staff/{other.id}",
        json={"active": False},
        headers=bearer(boss["access_token"]),
    )
    assert off.status_code == 200
    refused = await client.post(REFRESH, json={"refresh_token": rotated.json()["refresh_token"]})
    assert refused.status_code == 401
    assert refused.json()["code"] == "refresh_revoked"
    blocked = await client.get("/api/v1/staff/me", headers=bearer(rotated.json()["access_token"]))
    assert blocked.status_code == 401
    assert blocked.json()["detail"] == "staff account disabled"
