"""Staff login, /staff/me and role scoping of every staff route."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from forecourt.auth.models import Staff
from forecourt.runtime import Runtime
from tests.fixtures.auth import (
    PASSWORD,
    bearer,
    insert_station,
    make_member,
    make_staff,
    member_headers,
    staff_headers,
    staff_login,
)

STAFF = "/api/v1/staff"
LOGIN = "/api/v1/auth/staff/login"


@dataclass
class Org:
    """Two stations, their managers and attendants, and head office."""

    a: int
    b: int
    admin: Staff
    mgr_a: Staff
    mgr_b: Staff
    att_a: Staff
    att_b: Staff
    att_ab: Staff


@pytest.fixture
async def org(runtime: Runtime) -> Org:
    """The organisation every scoping test uses."""
    a = await insert_station(runtime)
    b = await insert_station(runtime)
    return Org(
        a=a,
        b=b,
        admin=await make_staff(runtime, username="admin"),
        mgr_a=await make_staff(runtime, role="station_manager", station_ids=[a], username="mgr_a"),
        mgr_b=await make_staff(runtime, role="station_manager", station_ids=[b], username="mgr_b"),
        att_a=await make_staff(runtime, role="attendant", station_ids=[a], username="att_a"),
        att_b=await make_staff(runtime, role="attendant", station_ids=[b], username="att_b"),
        att_ab=await make_staff(runtime, role="attendant", station_ids=[b, a], username="att_ab"),
    )


def _h(runtime: Runtime, staff: Staff) -> dict[str, str]:
    return staff_headers(runtime, staff)


async def test_staff_login_and_me(client: httpx.AsyncClient, runtime: Runtime, org: Org) -> None:
    body = await staff_login(client, username="MGR_A")
    assert body["staff"] == {
        "id": org.mgr_a.id,
        "username": "mgr_a",
        "display_name": org.mgr_a.display_name,
        "role": "station_manager",
        "active": True,
        "station_ids": [org.a],
        "created_at": body["staff"]["created_at"],
    }
    assert body["expires_in"] == 900
    me = await client.get(f"{STAFF}/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == body["staff"]
    ab = await client.get(f"{STAFF}/me", headers=_h(runtime, org.att_ab))
    assert ab.json()["station_ids"] == sorted([org.a, org.b])


@pytest.mark.parametrize(
    ("username", "password"), [("mgr_a", "wrong password"), ("nobody", PASSWORD)]
)
async def test_staff_login_refused_alike(
    client: httpx.AsyncClient, org: Org, username: str, password: str
) -> None:
    resp = await client.post(LOGIN, json={"username": username, "password": password})
    assert resp.status_code == 401
    body = resp.json()
    body.pop("request_id")
    assert body == {
        "type": "https://forecourt.dev/problems/invalid_credentials",
        "title": "Invalid username or password",
        "status": 401,
        "detail": "wrong username or password",
        "code": "invalid_credentials",
        "instance": LOGIN,
    }


async def test_disabled_staff_cannot_log_in(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await make_staff(runtime, username="gone", active=False)
    resp = await client.post(LOGIN, json={"username": "gone", "password": PASSWORD})
    assert resp.status_code == 403
    assert resp.json()["code"] == "account_disabled"


async def test_staff_login_rate_limited(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    runtime.settings.login_per_phone_per_hour = 2
    for _ in range(2):
        await client.post(LOGIN, json={"username": "mgr_a", "password": "wrong password"})
    resp = await client.post(LOGIN, json={"username": "mgr_a", "password": PASSWORD})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3600"
    assert resp.json()["detail"] == "too many login attempts for this account; try again in 3600 s"
    runtime.settings.login_per_ip_per_hour = 3
    resp = await client.post(LOGIN, json={"username": "mgr_b", "password": PASSWORD})
    assert resp.status_code == 429
    assert resp.json()["detail"] == (
        "too many login attempts from this address; try again in 3600 s"
    )


async def test_list_is_scoped(client: httpx.AsyncClient, runtime: Runtime, org: Org) -> None:
    everyone = await client.get(STAFF, headers=_h(runtime, org.admin))
    assert everyone.status_code == 200
    assert [s["username"] for s in everyone.json()["items"]] == [
        "admin",
        "mgr_a",
        "mgr_b",
        "att_a",
        "att_b",
        "att_ab",
    ]
    assert everyone.json()["total"] == 6
    assert (everyone.json()["offset"], everyone.json()["limit"]) == (0, 50)

    mine = await client.get(STAFF, headers=_h(runtime, org.mgr_a))
    assert [s["username"] for s in mine.json()["items"]] == ["att_a", "att_ab"]
    assert mine.json()["total"] == 2
    managers = await client.get(
        STAFF, params={"role": "station_manager"}, headers=_h(runtime, org.mgr_a)
    )
    assert managers.json() == {"items": [], "total": 0, "offset": 0, "limit": 50}

    at_b = await client.get(
        STAFF, params={"station_id": org.b, "role": "attendant"}, headers=_h(runtime, org.admin)
    )
    assert [s["username"] for s in at_b.json()["items"]] == ["att_b", "att_ab"]
    page = await client.get(STAFF, params={"offset": 1, "limit": 2}, headers=_h(runtime, org.admin))
    assert [s["username"] for s in page.json()["items"]] == ["mgr_a", "mgr_b"]
    assert page.json()["total"] == 6


async def test_get_is_scoped(client: httpx.AsyncClient, runtime: Runtime, org: Org) -> None:
    own = await client.get(f"{STAFF}/{org.att_a.id}", headers=_h(runtime, org.mgr_a))
    assert own.status_code == 200
    assert own.json()["station_ids"] == [org.a]
    shared = await client.get(f"{STAFF}/{org.att_ab.id}", headers=_h(runtime, org.mgr_a))
    assert shared.json()["station_ids"] == sorted([org.a, org.b])
    for hidden in (org.att_b, org.mgr_b, org.admin, org.mgr_a):
        resp = await client.get(f"{STAFF}/{hidden.id}", headers=_h(runtime, org.mgr_a))
        assert resp.status_code == 404
        assert resp.json()["code"] == "not_found"
        assert resp.json()["detail"] == f"staff {hidden.id} not found"
    assert (
        await client.get(f"{STAFF}/{org.att_b.id}", headers=_h(runtime, org.admin))
    ).status_code == 200
    assert (await client.get(f"{STAFF}/99999", headers=_h(runtime, org.admin))).status_code == 404


async def test_every_staff_route_refuses_attendants_drivers_and_anonymous(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    member = await make_member(runtime, phone="13900000000")
    routes = [
        ("GET", STAFF, None),
        (
            "POST",
            STAFF,
            {
                "username": "x_new",
                "password": PASSWORD,
                "display_name": "X",
                "role": "attendant",
                "station_ids": [org.a],
            },
        ),
        ("GET", f"{STAFF}/{org.att_a.id}", None),
        ("PATCH", f"{STAFF}/{org.att_a.id}", {"display_name": "Y"}),
        ("POST", f"{STAFF}/{org.att_a.id}/password", {"password": "another password"}),
    ]
    callers: list[tuple[dict[str, str], int, str]] = [
        (_h(runtime, org.att_a), 403, "role attendant may not do this"),
        (member_headers(runtime, member.id), 403, "staff only"),
        ({}, 401, "bearer token required"),
    ]
    for method, path, body in routes:
        for headers, status, detail in callers:
            resp = await client.request(method, path, json=body, headers=headers)
            assert (method, path, resp.status_code) == (method, path, status)
            assert resp.json()["detail"] == detail
    driver_me = await client.get(f"{STAFF}/me", headers=member_headers(runtime, member.id))
    assert driver_me.status_code == 403
    staff_as_member = await client.get("/api/v1/me", headers=_h(runtime, org.admin))
    assert staff_as_member.status_code == 403
    assert staff_as_member.json()["detail"] == "drivers only"


async def test_admin_creates_any_role(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    resp = await client.post(
        STAFF,
        json={
            "username": "New.Manager",
            "password": PASSWORD,
            "display_name": "新站长",
            "role": "station_manager",
            "station_ids": [org.b, org.a, org.b],
        },
        headers=_h(runtime, org.admin),
    )
    assert resp.status_code == 201
    body = resp.json()
    assert body == {
        "id": body["id"],
        "username": "new.manager",
        "display_name": "新站长",
        "role": "station_manager",
        "active": True,
        "station_ids": sorted([org.a, org.b]),
        "created_at": body["created_at"],
    }
    login = await staff_login(client, username="new.manager")
    assert login["staff"]["id"] == body["id"]


@pytest.mark.parametrize(
    ("change", "status", "code", "errors"),
    [
        (
            {"username": "mgr_a"},
            409,
            "username_taken",
            [{"field": "body.username", "reason": "already taken"}],
        ),
        (
            {"station_ids": [99999]},
            422,
            "unprocessable",
            [{"field": "body.station_ids", "reason": "unknown station(s): 99999"}],
        ),
        (
            {"station_ids": []},
            422,
            "unprocessable",
            [{"field": "body.station_ids", "reason": "at least one station for attendant"}],
        ),
        (
            {"role": "hq_admin"},
            422,
            "unprocessable",
            [{"field": "body.station_ids", "reason": "must be empty for hq_admin"}],
        ),
        (
            {"password": "short"},
            422,
            "validation_error",
            [{"field": "body.password", "reason": "String should have at least 8 characters"}],
        ),
        (
            {"role": "owner"},
            422,
            "validation_error",
            [
                {
                    "field": "body.role",
                    "reason": "Input should be 'hq_admin', 'station_manager' or 'attendant'",
                }
            ],
        ),
        (
            {"username": "has space"},
            422,
            "validation_error",
            [
                {
                    "field": "body.username",
                    "reason": "String should match pattern '^[A-Za-z0-9_.-]+$'",
                }
            ],
        ),
    ],
)
async def test_create_refuses_bad_input(
    client: httpx.AsyncClient,
    runtime: Runtime,
    org: Org,
    change: dict[str, object],
    status: int,
    code: str,
    errors: list[dict[str, str]],
) -> None:
    body: dict[str, object] = {
        "username": "fresh",
        "password": PASSWORD,
        "display_name": "Fresh",
        "role": "attendant",
        "station_ids": [org.a],
    }
    resp = await client.post(STAFF, json=body | change, headers=_h(runtime, org.admin))
    assert resp.status_code == status
    assert resp.json()["code"] == code
    assert resp.json()["errors"] == errors
    everyone = await client.get(STAFF, headers=_h(runtime, org.admin))
    assert everyone.json()["total"] == 6  # nothing half-written


async def test_manager_creates_only_attendants_of_own_stations(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    base = {"username": "att_new", "password": PASSWORD, "display_name": "新员工"}
    wrong_role = await client.post(
        STAFF,
        json=base | {"role": "station_manager", "station_ids": [org.a]},
        headers=_h(runtime, org.mgr_a),
    )
    assert wrong_role.status_code == 403
    assert wrong_role.json()["errors"] == [{"field": "body.role", "reason": "must be attendant"}]
    foreign = await client.post(
        STAFF,
        json=base | {"role": "attendant", "station_ids": [org.a, org.b]},
        headers=_h(runtime, org.mgr_a),
    )
    assert foreign.status_code == 403
    assert foreign.json()["errors"] == [
        {"field": "body.station_ids", "reason": f"not your station(s): {org.b}"}
    ]
    ok = await client.post(
        STAFF,
        json=base | {"role": "attendant", "station_ids": [org.a]},
        headers=_h(runtime, org.mgr_a),
    )
    assert ok.status_code == 201
    assert (ok.json()["role"], ok.json()["station_ids"]) == ("attendant", [org.a])


async def test_manager_updates_only_own_attendants(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    mgr = _h(runtime, org.mgr_a)
    hidden = await client.patch(f"{STAFF}/{org.att_b.id}", json={"display_name": "X"}, headers=mgr)
    assert hidden.status_code == 404
    promote = await client.patch(
        f"{STAFF}/{org.att_a.id}", json={"role": "station_manager"}, headers=mgr
    )
    assert promote.status_code == 403
    renamed = await client.patch(
        f"{STAFF}/{org.att_a.id}", json={"display_name": "小王"}, headers=mgr
    )
    assert renamed.status_code == 200
    assert renamed.json()["display_name"] == "小王"
    # Removing A from an attendant of A and B keeps B, which is not the manager's to change.
    moved = await client.patch(f"{STAFF}/{org.att_ab.id}", json={"station_ids": []}, headers=mgr)
    assert moved.status_code == 200
    assert moved.json()["station_ids"] == [org.b]
    gone = await client.get(f"{STAFF}/{org.att_ab.id}", headers=mgr)
    assert gone.status_code == 404
    emptied = await client.patch(f"{STAFF}/{org.att_a.id}", json={"station_ids": []}, headers=mgr)
    assert emptied.status_code == 422
    assert emptied.json()["errors"] == [
        {"field": "body.station_ids", "reason": "at least one station for attendant"}
    ]


async def test_deactivation_ends_access(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    login = await staff_login(client, username="att_a")
    off = await client.patch(
        f"{STAFF}/{org.att_a.id}", json={"active": False}, headers=_h(runtime, org.mgr_a)
    )
    assert off.status_code == 200
    assert off.json()["active"] is False
    me = await client.get(f"{STAFF}/me", headers=bearer(login["access_token"]))
    assert me.status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
    )
    assert refresh.json()["code"] == "refresh_revoked"
    listed = await client.get(STAFF, params={"active": False}, headers=_h(runtime, org.admin))
    assert [s["username"] for s in listed.json()["items"]] == ["att_a"]


async def test_password_reset(client: httpx.AsyncClient, runtime: Runtime, org: Org) -> None:
    mgr = _h(runtime, org.mgr_a)
    hidden = await client.post(
        f"{STAFF}/{org.att_b.id}/password", json={"password": "new password 1"}, headers=mgr
    )
    assert hidden.status_code == 404
    reset = await client.post(
        f"{STAFF}/{org.att_a.id}/password", json={"password": "new password 1"}, headers=mgr
    )
    assert reset.status_code == 204
    old = await client.post(LOGIN, json={"username": "att_a", "password": PASSWORD})
    assert old.status_code == 401
    await staff_login(client, username="att_a", password="new password 1")


async def test_admin_changes_roles_and_keeps_one_admin(
    client: httpx.AsyncClient, runtime: Runtime, org: Org
) -> None:
    admin = _h(runtime, org.admin)
    promoted = await client.patch(
        f"{STAFF}/{org.mgr_b.id}", json={"role": "hq_admin"}, headers=admin
    )
    assert promoted.status_code == 200
    assert (promoted.json()["role"], promoted.json()["station_ids"]) == ("hq_admin", [])
    demoted = await client.patch(
        f"{STAFF}/{org.mgr_b.id}", json={"role": "attendant", "station_ids": [org.b]}, headers=admin
    )
    assert demoted.status_code == 200
    assert (demoted.json()["role"], demoted.json()["station_ids"]) == ("attendant", [org.b])
    self_off = await client.patch(f"{STAFF}/{org.admin.id}", json={"active": False}, headers=admin)
    assert self_off.status_code == 409
    assert self_off.json()["code"] == "last_hq_admin"
    self_demote = await client.patch(
        f"{STAFF}/{org.admin.id}",
        json={"role": "station_manager", "station_ids": [org.a]},
        headers=admin,
    )
    assert self_demote.status_code == 409
    assert self_demote.json()["detail"] == "at least one active hq_admin must remain"
    second = await make_staff(runtime, username="admin2")
    self_off = await client.patch(f"{STAFF}/{org.admin.id}", json={"active": False}, headers=admin)
    assert self_off.status_code == 422
    assert self_off.json()["errors"] == [
        {"field": "body.active", "reason": "cannot deactivate yourself"}
    ]
    off = await client.patch(
        f"{STAFF}/{org.admin.id}", json={"active": False}, headers=_h(runtime, second)
    )
    assert off.status_code == 200


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, [{"field": "body", "reason": "give at least one field to change"}]),
        ({"role": None}, [{"field": "body.role", "reason": "may be omitted but not null"}]),
        (
            {"active": "maybe"},
            [
                {
                    "field": "body.active",
                    "reason": "Input should be a valid boolean, unable to interpret input",
                }
            ],
        ),
        (
            {"station_ids": [0]},
            [
                {
                    "field": "body.station_ids.0",
                    "reason": "Input should be greater than or equal to 1",
                }
            ],
        ),
    ],
)
async def test_update_validation_names_the_field(
    client: httpx.AsyncClient,
    runtime: Runtime,
    org: Org,
    body: dict[str, object],
    errors: list[dict[str, str]],
) -> None:
    resp = await client.patch(f"{STAFF}/{org.att_a.id}", json=body, headers=_h(runtime, org.admin))
    assert resp.status_code == 422
    assert resp.json()["errors"] == errors
