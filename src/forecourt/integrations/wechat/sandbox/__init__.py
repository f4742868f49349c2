"""A wire-exact emulator of WeChat's mini-program server APIs, as a small ASGI app.

In-process (tests, demo) the real `WeChatClient` talks to `sandbox.app` through
`httpx.ASGITransport`; standalone it runs with
`uvicorn --factory forecourt.integrations.wechat.sandbox:create_app`.

Wire behaviour copied from WeChat: every answer is HTTP 200; failures are
`{"errcode": n, "errmsg": "..., rid: ..."}`; jscode2session answers `text/plain`; a login code
works once (a reused one gets 40163, an unknown or expired one 40029); phone codes are
single-use and live 5 minutes. Test-only controls live under `/sandbox/` and as methods.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forecourt.integrations.wechat.client import (
    BUSY,
    CODE_USED,
    HIGH_RISK,
    INVALID_CODE,
    INVALID_CREDENTIAL,
    RATE_LIMITED,
)
from forecourt.kit import clock

JSON = "application/json; encoding=utf-8"
ERRMSG = {
    BUSY: "system error",
    INVALID_CODE: "invalid code",
    CODE_USED: "code been used",
    RATE_LIMITED: "api minute-quota reach limit  mustslower  retry next minute",
    HIGH_RISK: "high risk user",
    INVALID_CREDENTIAL: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40125: "invalid appsecret",
    41008: "missing code",
    47001: "data format error",
}
CODE_TTL = timedelta(minutes=5)
TOKEN_TTL = 7200


@dataclass
class _Code:
    subject: str
    unionid: str | None
    expires_at: datetime
    used: bool = False


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _answer(body: dict[str, Any], *, media_type: str = JSON) -> Response:
    return Response(orjson.dumps(body), status_code=200, media_type=media_type)


def _error(errcode: int, *, media_type: str = JSON) -> Response:
    msg = f"{ERRMSG.get(errcode, 'error')}, rid: {_rid()}"
    return _answer({"errcode": errcode, "errmsg": msg}, media_type=media_type)


def _prune(codes: dict[str, _Code]) -> None:
    now = clock.now()
    for key in [k for k, v in codes.items() if v.expires_at <= now - CODE_TTL]:
        del codes[key]


def test_openid() -> str:
    """A random openid shaped like WeChat's (28 characters starting with 'o')."""
    return "o" + secrets.token_urlsafe(20)[:27]


class WeChatSandbox:
    """State of the emulated WeChat: issued codes, access tokens and injected faults."""

    def __init__(self, *, appid: str, secret: str) -> None:
        self.appid = appid
        self.secret = secret
        self._login_codes: dict[str, _Code] = {}
        self._phone_codes: dict[str, _Code] = {}
        self._tokens: dict[str, datetime] = {}
        self._faults: deque[int] = deque()
        self._high_risk: set[str] = set()
        self.calls: deque[str] = deque(maxlen=1000)
        self.app = Starlette(
            routes=[
                Route("/sns/jscode2session", self._jscode2session, methods=["GET"]),
                Route("/cgi-bin/stable_token", self._stable_token, methods=["POST"]),
                Route("/wxa/business/getuserphonenumber", self._phone_number, methods=["POST"]),
                Route("/sandbox/jscode", self._mint_code_http, methods=["POST"]),
                Route("/sandbox/phonecode", self._mint_phone_code_http, methods=["POST"]),
                Route("/sandbox/faults", self._fault_http, methods=["POST"]),
            ]
        )

    # -- controls for tests and the demo ---------------------------------------------------

    def mint_code(self, openid: str | None = None, *, unionid: str | None = None) -> str:
        """A fresh wx.login code that code2Session will resolve to `openid` (once)."""
        _prune(self._login_codes)
        code = secrets.token_hex(16)
        self._login_codes[code] = _Code(
            subject=openid or test_openid(), unionid=unionid, expires_at=clock.now() + CODE_TTL
        )
        return code

    def mint_phone_code(self, phone: str) -> str:
        """A fresh getPhoneNumber code that resolves to `phone` (11 digits, once)."""
        _prune(self._phone_codes)
        code = secrets.token_hex(32)
        self._phone_codes[code] = _Code(
            subject=phone, unionid=None, expires_at=clock.now() + CODE_TTL
        )
        return code

    def fail_next(self, errcode: int, *, times: int = 1) -> None:
        """Answer the next `times` API calls with `errcode` (e.g. -1 busy, 45011 rate limit)."""
        self._faults.extend([errcode] * times)

    def flag_high_risk(self, openid: str) -> None:
        """Refuse this user's logins with 40226."""
        self._high_risk.add(openid)

    # -- WeChat endpoints ------------------------------------------------------------------

    def _fault(self) -> int | None:
        return self._faults.popleft() if self._faults else None

    async def _jscode2session(self, request: Request) -> Response:
        self.calls.append("jscode2session")
        q = request.query_params

        def fail(errcode: int) -> Response:
            return _error(errcode, media_type="text/plain")

        if q.get("grant_type") != "authorization_code":
            return fail(40002)
        if q.get("appid") != self.appid:
            return fail(40013)
        if not secrets.compare_digest(q.get("secret", ""), self.secret):
            return fail(40125)
        js_code = q.get("js_code", "")
        if not js_code:
            return fail(41008)
        fault = self._fault()
        if fault is not None:
            return fail(fault)
        entry = self._login_codes.get(js_code)
        if entry is None or entry.expires_at <= clock.now():
            return fail(INVALID_CODE)
        if entry.used:
            return fail(CODE_USED)
        entry.used = True
        if entry.subject in self._high_risk:
            return fail(HIGH_RISK)
        body: dict[str, Any] = {
            "session_key": secrets.token_urlsafe(18)[:24],
            "openid": entry.subject,
        }
        if entry.unionid:
            body["unionid"] = entry.unionid
        return _answer(body, media_type="text/plain")

    async def _stable_token(self, request: Request) -> Response:
        self.calls.append("stable_token")
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(47001)
        if not isinstance(data, dict) or data.get("grant_type") != "client_credential":
            return _error(40002)
        if data.get("appid") != self.appid:
            return _error(40013)
        if not secrets.compare_digest(str(data.get("secret", "")), self.secret):
            return _error(40125)
        fault = self._fault()
        if fault is not None:
            return _error(fault)
        now = clock.now()
        live = [t for t, exp in self._tokens.items() if exp > now]
        if live and not data.get("force_refresh"):
            token = live[0]
        else:
            token = secrets.token_urlsafe(96)
            self._tokens = {token: now + timedelta(seconds=TOKEN_TTL)}
        remaining = int((self._tokens[token] - now).total_seconds())
        return _answer({"access_token": token, "expires_in": remaining})

    async def _phone_number(self, request: Request) -> Response:
        self.calls.append("getuserphonenumber")
        token = request.query_params.get("access_token", "")
        expires = self._tokens.get(token)
        if expires is None or expires <= clock.now():
            return _error(INVALID_CREDENTIAL)
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(47001)
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        if not code:
            return _error(47001)
        fault = self._fault()
        if fault is not None:
            return _error(fault)
        entry = self._phone_codes.get(code)
        if entry is None or entry.expires_at <= clock.now() or entry.used:
            return _error(INVALID_CODE)
        entry.used = True
        return _answer(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": entry.subject,
                    "purePhoneNumber": entry.subject,
                    "countryCode": "86",
                    "watermark": {
                        "timestamp": int(clock.now().timestamp()),
                        "appid": self.appid,
                    },
                },
            }
        )

    # -- sandbox-only HTTP controls (standalone server) ------------------------------------

    async def _json(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            data = None
        return data if isinstance(data, dict) else {}

    async def _mint_code_http(self, request: Request) -> Response:
        data = await self._json(request)
        openid = str(data["openid"]) if data.get("openid") else test_openid()
        unionid = str(data["unionid"]) if data.get("unionid") else None
        return _answer({"js_code": self.mint_code(openid, unionid=unionid), "openid": openid})

    async def _mint_phone_code_http(self, request: Request) -> Response:
        data = await self._json(request)
        phone = str(data.get("phone", ""))
        if not (len(phone) == 11 and phone.isdigit()):
            return _answer({"error": "phone must be 11 digits"})
        return _answer({"code": self.mint_phone_code(phone)})

    async def _fault_http(self, request: Request) -> Response:
        data = await self._json(request)
        self.fail_next(int(data.get("errcode", BUSY)), times=int(data.get("times", 1)))
        return _answer({"queued": len(self._faults)})


def create_app() -> Starlette:
    """Standalone sandbox using FORECOURT_WECHAT_APPID / FORECOURT_WECHAT_SECRET."""
    from forecourt.config import Settings

    settings = Settings()
    secret = settings.wechat_secret.get_secret_value() if settings.wechat_secret else "sandbox"
    return WeChatSandbox(appid=settings.wechat_appid, secret=secret).app
