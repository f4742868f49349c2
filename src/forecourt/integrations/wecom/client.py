"""WeChat Work (企业微信) server API: access token, customer tags, id conversion.

Every answer is HTTP 200 with `{errcode, errmsg}`; `errcode` 0 is success. The access token
(GET /cgi-bin/gettoken) lives 7200 s and is cached; an expired or invalid one (42001, 40014)
is renewed and the call tried once more. Rate limits (45009, 45033) and a busy system (-1)
are retryable; the caller backs off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import orjson

from forecourt.integrations.httplog import redact_query_strings
from forecourt.kit import clock

log = logging.getLogger(__name__)

PRODUCTION_BASE = "https://qyapi.weixin.qq.com"

BUSY = -1
INVALID_CREDENTIAL = 40001  # bad corpsecret
INVALID_USERID = 40003
INVALID_CORPID = 40013
INVALID_TOKEN = 40014
INVALID_PARAMETER = 40058
INVALID_TAG = 40068
INVALID_EXTERNAL_USERID = 40096
MISSING_TOKEN = 41001
TOKEN_EXPIRED = 42001
FREQ_LIMIT = 45009
CONCURRENCY_LIMIT = 45033
NOT_CONTACT = 84061
RETRYABLE = frozenset({BUSY, FREQ_LIMIT, CONCURRENCY_LIMIT})
TOKEN_ERRORS = frozenset({INVALID_TOKEN, TOKEN_EXPIRED, MISSING_TOKEN})


class WeComError(Exception):
    """WeCom refused the call (`errcode`), or could not be reached (`errcode` None)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"wecom error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def retryable(self) -> bool:
        """True for rate limits, a busy system and network failures."""
        return self.errcode is None or self.errcode in RETRYABLE


class WeComApi(Protocol):
    """What loyalty needs from WeCom."""

    async def mark_tag(
        self,
        *,
        userid: str,
        external_userid: str,
        add_tag: Sequence[str],
        remove_tag: Sequence[str],
    ) -> None:
        """Add and remove corporate tags on one customer (externalcontact/mark_tag)."""
        ...

    async def external_userid(self, *, openid: str, unionid: str | None) -> str | None:
        """The customer's external_userid from WeChat ids (None: not a customer)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class WeComClient:
    """httpx client for qyapi.weixin.qq.com (or the sandbox, through an injected transport)."""

    def __init__(
        self,
        *,
        corpid: str,
        secret: str,
        base_url: str = PRODUCTION_BASE,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
    ) -> None:
        redact_query_strings()
        self.corpid = corpid
        self._secret = secret
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)
        self._token: str | None = None
        self._token_expires: datetime | None = None
        self._token_lock = asyncio.Lock()

    async def _call(
        self, method: str, path: str, *, params: dict[str, str], json: Any = None
    ) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, path, params=params, json=json)
        except httpx.HTTPError as exc:
            log.warning("wecom unreachable", extra={"path": path, "error": type(exc).__name__})
            raise WeComError(None, "wecom unreachable") from exc
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise WeComError(None, f"unexpected answer (HTTP {resp.status_code})") from exc
        if not isinstance(body, dict) or resp.status_code != 200:
            raise WeComError(None, f"unexpected answer (HTTP {resp.status_code})")
        errcode = int(body.get("errcode") or 0)
        if errcode != 0:
            log.info("wecom refused", extra={"path": path, "errcode": errcode})
            raise WeComError(errcode, str(body.get("errmsg", "")))
        return body

    async def _access_token(self, *, stale: str | None = None) -> str:
        async with self._token_lock:
            now = clock.now()
            fresh = self._token_expires is not None and now < self._token_expires
            if self._token and fresh and self._token != stale:
                return self._token
            body = await self._call(
                "GET",
                "/cgi-bin/gettoken",
                params={"corpid": self.corpid, "corpsecret": self._secret},
            )
            self._token = str(body["access_token"])
            # Renew five minutes early so a token never expires in flight.
            self._token_expires = now + timedelta(seconds=int(body["expires_in"]) - 300)
            return self._token

    async def _with_token(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = await self._access_token()
        try:
            return await self._call("POST", path, params={"access_token": token}, json=payload)
        except WeComError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
        token = await self._access_token(stale=token)
        return await self._call("POST", path, params={"access_token": token}, json=payload)

    async def mark_tag(
        self,
        *,
        userid: str,
        external_userid: str,
        add_tag: Sequence[str],
        remove_tag: Sequence[str],
    ) -> None:
        """POST /cgi-bin/externalcontact/mark_tag; adding a tag twice is harmless."""
        await self._with_token(
            "/cgi-bin/externalcontact/mark_tag",
            {
                "userid": userid,
                "external_userid": external_userid,
                "add_tag": list(add_tag),
                "remove_tag": list(remove_tag),
            },
        )

    async def external_userid(self, *, openid: str, unionid: str | None) -> str | None:
        """POST /cgi-bin/idconvert/unionid_to_external_userid (None when not a customer)."""
        payload: dict[str, Any] = {"openid": openid, "subject_type": 0}
        if unionid:
            payload["unionid"] = unionid
        try:
            body = await self._with_token("/cgi-bin/idconvert/unionid_to_external_userid", payload)
        except WeComError as exc:
            if exc.errcode in (NOT_CONTACT, INVALID_EXTERNAL_USERID):
                return None
            raise
        for info in body.get("external_userid_info") or []:
            if info.get("corpid") == self.corpid and info.get("external_userid"):
                return str(info["external_userid"])
        return None

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()
