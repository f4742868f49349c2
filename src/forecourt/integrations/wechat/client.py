"""WeChat mini-program server APIs: code2Session and the phone-number exchange.

WeChat answers HTTP 200 with `{errcode, errmsg}` on failure (jscode2session even says
`text/plain`), so bodies are parsed as JSON whatever the content type and `errcode` decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import orjson

from forecourt.integrations.httplog import redact_query_strings
from forecourt.kit import clock

log = logging.getLogger(__name__)

PRODUCTION_BASE = "https://api.weixin.qq.com"

INVALID_CODE = 40029
CODE_USED = 40163
RATE_LIMITED = 45011
HIGH_RISK = 40226
BUSY = -1
INVALID_CREDENTIAL = 40001
TOKEN_EXPIRED = 42001


class WeChatError(Exception):
    """WeChat refused the call (`errcode` != 0) or could not be reached (`errcode` None)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"wechat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class WeChatSession:
    """The answer of code2Session; `session_key` is secret and never logged or stored."""

    openid: str
    session_key: str
    unionid: str | None = None

    def __repr__(self) -> str:
        return f"WeChatSession(openid={self.openid!r}, unionid={self.unionid!r})"


@dataclass(frozen=True)
class WeChatPhone:
    """A phone number WeChat vouches for."""

    phone_number: str
    pure_phone_number: str
    country_code: str

    def __repr__(self) -> str:
        return f"WeChatPhone(country_code={self.country_code!r})"


class WeChatApi(Protocol):
    """What the platform needs from WeChat's server APIs."""

    async def code2session(self, js_code: str) -> WeChatSession:
        """Exchange a wx.login code for the user's openid (GET /sns/jscode2session)."""
        ...

    async def phone_number(self, code: str) -> WeChatPhone:
        """Exchange a getPhoneNumber code for the user's phone number."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class WeChatClient:
    """httpx client for api.weixin.qq.com (or the sandbox, through an injected transport)."""

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        base_url: str = PRODUCTION_BASE,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
    ) -> None:
        redact_query_strings()
        self.appid = appid
        self._secret = secret
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)
        self._token: str | None = None
        self._token_expires: datetime | None = None

    async def _call(
        self, method: str, path: str, *, params: dict[str, str], json: Any = None
    ) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, path, params=params, json=json)
        except httpx.HTTPError as exc:
            log.warning("wechat unreachable", extra={"path": path, "error": type(exc).__name__})
            raise WeChatError(None, "wechat unreachable") from exc
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise WeChatError(None, f"unexpected answer (HTTP {resp.status_code})") from exc
        if not isinstance(body, dict):
            raise WeChatError(None, "unexpected answer")
        errcode = int(body.get("errcode") or 0)
        if errcode != 0 or resp.status_code != 200:
            errmsg = str(body.get("errmsg", ""))
            log.info("wechat refused", extra={"path": path, "errcode": errcode})
            raise WeChatError(errcode or None, errmsg or f"HTTP {resp.status_code}")
        return body

    async def code2session(self, js_code: str) -> WeChatSession:
        """Exchange a wx.login code for the user's openid (GET /sns/jscode2session)."""
        body = await self._call(
            "GET",
            "/sns/jscode2session",
            params={
                "appid": self.appid,
                "secret": self._secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
            },
        )
        if not body.get("openid") or not body.get("session_key"):
            raise WeChatError(None, "jscode2session answer without openid")
        return WeChatSession(
            openid=str(body["openid"]),
            session_key=str(body["session_key"]),
            unionid=str(body["unionid"]) if body.get("unionid") else None,
        )

    async def _access_token(self, *, force: bool = False) -> str:
        now = clock.now()
        if not force and self._token and self._token_expires and now < self._token_expires:
            return self._token
        body = await self._call(
            "POST",
            "/cgi-bin/stable_token",
            params={},
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self._secret,
                "force_refresh": force,
            },
        )
        self._token = str(body["access_token"])
        # Renew five minutes early so a token never expires in flight.
        self._token_expires = now + timedelta(seconds=int(body["expires_in"]) - 300)
        return self._token

    async def phone_number(self, code: str) -> WeChatPhone:
        """Exchange a getPhoneNumber code (POST /wxa/business/getuserphonenumber)."""
        for attempt in (0, 1):
            token = await self._access_token(force=attempt == 1)
            try:
                body = await self._call(
                    "POST",
                    "/wxa/business/getuserphonenumber",
                    params={"access_token": token},
                    json={"code": code},
                )
            except WeChatError as exc:
                if exc.errcode in (INVALID_CREDENTIAL, TOKEN_EXPIRED) and attempt == 0:
                    continue
                raise
            info = body.get("phone_info") or {}
            return WeChatPhone(
                phone_number=str(info["phoneNumber"]),
                pure_phone_number=str(info["purePhoneNumber"]),
                country_code=str(info["countryCode"]),
            )
        raise WeChatError(INVALID_CREDENTIAL, "access token refused twice")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()
