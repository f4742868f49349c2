"""A wire-exact emulator of the WeCom APIs loyalty uses, as a small ASGI app.

In-process (tests, demo) the real `WeComClient` talks to `sandbox.app` through
`httpx.ASGITransport`; standalone it runs with
`uvicorn --factory forecourt.integrations.wecom.sandbox:create_app`.

Copied from WeCom: every answer is HTTP 200 `{errcode, errmsg}` (errmsg carries a hint
URL); gettoken checks corpid (40013) and secret (40001); calls check the token (41001
missing, 40014 invalid, 42001 expired); mark_tag checks the follow user (40003), the
customer (40096), the relation (84061), the tags (40068) and refuses an empty change
(40058). Openids map to customers registered with `add_customer` (the real API also wants
the unionid; the sandbox accepts the openid alone).
"""

from __future__ import annotations

import secrets
from collections import deque
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forecourt.integrations.wecom.client import (
    BUSY,
    INVALID_CORPID,
    INVALID_CREDENTIAL,
    INVALID_EXTERNAL_USERID,
    INVALID_PARAMETER,
    INVALID_TAG,
    INVALID_TOKEN,
    INVALID_USERID,
    MISSING_TOKEN,
    NOT_CONTACT,
    TOKEN_EXPIRED,
)
from forecourt.kit import clock

JSON = "application/json; charset=UTF-8"
TOKEN_TTL = 7200
ERRMSG = {
    BUSY: "system busy",
    INVALID_CREDENTIAL: "invalid credential",
    INVALID_USERID: "invalid userid",
    INVALID_CORPID: "invalid corpid",
    INVALID_TOKEN: "invalid access_token",
    INVALID_PARAMETER: "invalid Request Parameter",
    INVALID_TAG: "invalid tagid",
    INVALID_EXTERNAL_USERID: "invalid external userid",
    MISSING_TOKEN: "access_token missing",
    TOKEN_EXPIRED: "access_token expired",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    NOT_CONTACT: "not external contact",
}


def _answer(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=200, media_type=JSON)


def _error(errcode: int) -> Response:
    hint = f"hint: [{int(clock.now().timestamp())}_{secrets.token_hex(16)}], from ip: 127.0.0.1"
    more = f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    msg = f"{ERRMSG.get(errcode, 'error')}, {hint}, {more}"
    return _answer({"errcode": errcode, "errmsg": msg})


class WeComSandbox:
    """State of the emulated corp: follow users, customers, tags, tokens and injected faults."""

    def __init__(
        self, *, corpid: str, secret: str, follow_users: tuple[str, ...], tags: tuple[str, ...]
    ) -> None:
        self.corpid = corpid
        self.secret = secret
        self.follow_users = set(follow_users)
        self.tags = set(tags)
        self.customers: dict[str, str] = {}  # openid -> external_userid
        self.relations: dict[tuple[str, str], set[str]] = {}  # (userid, external) -> tags
        self._tokens: dict[str, datetime] = {}
        self._faults: deque[int] = deque()
        self.calls: deque[tuple[str, dict[str, Any]]] = deque(maxlen=10_000)
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/gettoken", self._gettoken, methods=["GET"]),
                Route("/cgi-bin/externalcontact/mark_tag", self._mark_tag, methods=["POST"]),
                Route(
                    "/cgi-bin/idconvert/unionid_to_external_userid",
                    self._to_external,
                    methods=["POST"],
                ),
            ]
        )

    # -- controls for tests and the demo ---------------------------------------------------

    def add_customer(self, openid: str, *, follow_user: str | None = None) -> str:
        """A WeChat user who added a follow user: their external_userid."""
        external = self.customers.get(openid) or "wm" + secrets.token_urlsafe(24)[:30]
        self.customers[openid] = external
        user = follow_user or next(iter(sorted(self.follow_users)))
        self.relations.setdefault((user, external), set())
        return external

    def tags_of(self, external_userid: str, *, follow_user: str | None = None) -> set[str]:
        """The tags a follow user has put on a customer."""
        user = follow_user or next(iter(sorted(self.follow_users)))
        return set(self.relations.get((user, external_userid), set()))

    def fail_next(self, errcode: int, *, times: int = 1) -> None:
        """Answer the next `times` API calls (not gettoken) with `errcode`."""
        self._faults.extend([errcode] * times)

    def expire_tokens(self) -> None:
        """Every issued token is now expired (the next call gets 42001)."""
        now = clock.now()
        self._tokens = {token: now - timedelta(seconds=1) for token in self._tokens}

    def count(self, api: str) -> int:
        """How many calls an API received."""
        return sum(1 for name, _ in self.calls if name == api)

    # -- WeCom endpoints -------------------------------------------------------------------

    async def _gettoken(self, request: Request) -> Response:
        q = request.query_params
        self.calls.append(("gettoken", {}))
        if q.get("corpid") != self.corpid:
            return _error(INVALID_CORPID)
        if not secrets.compare_digest(q.get("corpsecret", ""), self.secret):
            return _error(INVALID_CREDENTIAL)
        token = secrets.token_urlsafe(48)
        self._tokens[token] = clock.now() + timedelta(seconds=TOKEN_TTL)
        return _answer(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": TOKEN_TTL}
        )

    async def _authorised(self, request: Request, api: str) -> tuple[Response | None, Any]:
        token = request.query_params.get("access_token")
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            data = None
        self.calls.append((api, data if isinstance(data, dict) else {}))
        if not token:
            return _error(MISSING_TOKEN), None
        expires = self._tokens.get(token)
        if expires is None:
            return _error(INVALID_TOKEN), None
        if expires <= clock.now():
            return _error(TOKEN_EXPIRED), None
        if not isinstance(data, dict):
            return _error(47001), None
        if self._faults:
            return _error(self._faults.popleft()), None
        return None, data

    async def _mark_tag(self, request: Request) -> Response:
        refused, data = await self._authorised(request, "mark_tag")
        if refused is not None:
            return refused
        userid, external = str(data.get("userid", "")), str(data.get("external_userid", ""))
        add, remove = data.get("add_tag") or [], data.get("remove_tag") or []
        if not isinstance(add, list) or not isinstance(remove, list) or not (add or remove):
            return _error(INVALID_PARAMETER)
        if userid not in self.follow_users:
            return _error(INVALID_USERID)
        if external not in self.customers.values():
            return _error(INVALID_EXTERNAL_USERID)
        tags = self.relations.get((userid, external))
        if tags is None:
            return _error(NOT_CONTACT)
        if any(str(tag) not in self.tags for tag in [*add, *remove]):
            return _error(INVALID_TAG)
        tags.difference_update(str(tag) for tag in remove)
        tags.update(str(tag) for tag in add)
        return _answer({"errcode": 0, "errmsg": "ok"})

    async def _to_external(self, request: Request) -> Response:
        refused, data = await self._authorised(request, "unionid_to_external_userid")
        if refused is not None:
            return refused
        openid = str(data.get("openid", ""))
        if not openid:
            return _error(INVALID_PARAMETER)
        external = self.customers.get(openid)
        if external is None:
            return _error(NOT_CONTACT)
        info = [{"corpid": self.corpid, "external_userid": external}]
        return _answer({"errcode": 0, "errmsg": "ok", "external_userid_info": info})


def create_app() -> Starlette:
    """Standalone sandbox using FORECOURT_WECOM_CORPID / FORECOURT_WECOM_SECRET."""
    from forecourt.config import Settings
    from forecourt.loyalty.domain import DEFAULT_TIERS

    settings = Settings()
    secret = settings.wecom_secret.get_secret_value() if settings.wecom_secret else "sandbox"
    tags = tuple(t.wecom_tag_id for t in DEFAULT_TIERS if t.wecom_tag_id)
    sandbox = WeComSandbox(
        corpid=settings.wecom_corpid,
        secret=secret,
        follow_users=(settings.wecom_follow_userid,),
        tags=tags,
    )
    return sandbox.app
