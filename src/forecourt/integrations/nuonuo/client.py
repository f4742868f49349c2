"""Nuonuo open platform wire client (诺诺开放平台): signed calls, access token, results.

Every call is `POST /open/v1/services?senid=…&nonce=…&timestamp=…&appkey=…` with the JSON
business parameters as the body and the headers `X-Nuonuo-Sign`, `accessToken`, `userTax`
(the seller's tax id) and `method`. The sign is

    Base64(HMAC-SHA1(appSecret,
        "a=services&l=v1&p=open&k={appKey}&i={senid}&n={nonce}&t={timestamp}&f={body}"))

Answers are `{"code": "E0000", "describe": "…", "result": …}`; any other code is an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from forecourt.invoice.providers import InvoiceProviderError
from forecourt.kit import clock

log = logging.getLogger(__name__)

PRODUCTION_BASE = "https://sdk.nuonuo.com"
PRODUCTION_TOKEN_URL = "https://open.nuonuo.com/accessToken"  # noqa: S105 (a URL)
SERVICES_PATH = "/open/v1/services"
ISSUE = "nuonuo.OpeMplatform.requestBillingNew"
QUERY = "nuonuo.OpeMplatform.queryInvoiceResult"
SUCCESS = "E0000"
DUPLICATE_ORDER_NO = "E9106"  # 订单编号重复: the order was submitted before
SYSTEM_BUSY = "E9999"
RETRYABLE_CODES = frozenset({SYSTEM_BUSY, "NETWORK_ERROR", "INVALID_RESPONSE"})
USER_AGENT = "forecourt-nuonuo/1 (httpx)"


class NuonuoError(InvoiceProviderError):
    """Nuonuo refused a call, could not be reached, or answered something unreadable."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        retryable = code in RETRYABLE_CODES or (status is not None and status >= 500)
        super().__init__(code, message, retryable=retryable)
        self.status = status


def sign(
    app_secret: str, *, app_key: str, senid: str, nonce: str, timestamp: str, body: str
) -> str:
    """The X-Nuonuo-Sign of one call."""
    message = f"a=services&l=v1&p=open&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={body}"
    digest = hmac.new(app_secret.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def new_senid() -> str:
    """A request id: 32 hex characters."""
    return uuid.uuid4().hex


def new_nonce() -> str:
    """A random number of 8 digits."""
    return str(10_000_000 + secrets.randbelow(90_000_000))


class NuonuoClient:
    """httpx client for the Nuonuo open API (or the sandbox, through an injected transport)."""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        access_token: str | None = None,
        base_url: str = PRODUCTION_BASE,
        token_url: str = PRODUCTION_TOKEN_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.app_key = app_key
        self._secret = app_secret
        self._token = access_token
        self._token_expires: datetime | None = None if access_token is None else datetime.max
        self.token_url = token_url
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def access_token(self) -> str:
        """The configured token, or one from the client-credentials grant (cached)."""
        now = clock.now().replace(tzinfo=None)
        if self._token and self._token_expires is not None and now < self._token_expires:
            return self._token
        form = {
            "client_id": self.app_key,
            "client_secret": self._secret,
            "grant_type": "client_credentials",
        }
        try:
            resp = await self._http.post(self.token_url, data=form)
        except httpx.HTTPError as exc:
            raise NuonuoError("NETWORK_ERROR", "nuonuo token endpoint unreachable") from exc
        body = self._json(resp)
        token = body.get("access_token")
        if resp.status_code >= 400 or not isinstance(token, str) or not token:
            raise NuonuoError(str(body.get("error", "TOKEN_REFUSED")), "no access token")
        expires_in = int(body.get("expires_in") or 3600)
        self._token = token
        self._token_expires = now + timedelta(seconds=max(60, expires_in - 60))
        return token

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any]:
        if resp.status_code >= 500:
            raise NuonuoError(f"HTTP_{resp.status_code}", "server error", status=resp.status_code)
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise NuonuoError("INVALID_RESPONSE", "answer is not JSON") from exc
        if not isinstance(body, dict):
            raise NuonuoError("INVALID_RESPONSE", "answer is not a JSON object")
        return body

    async def call(self, method: str, payload: Mapping[str, Any], *, user_tax: str) -> Any:
        """One signed call; the `result` of an E0000 answer, NuonuoError otherwise."""
        body = orjson.dumps(payload).decode()
        senid, nonce = new_senid(), new_nonce()
        timestamp = str(int(clock.now().timestamp()))
        params = {"senid": senid, "nonce": nonce, "timestamp": timestamp, "appkey": self.app_key}
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Nuonuo-Sign": sign(
                self._secret,
                app_key=self.app_key,
                senid=senid,
                nonce=nonce,
                timestamp=timestamp,
                body=body,
            ),
            "accessToken": await self.access_token(),
            "userTax": user_tax,
            "method": method,
        }
        try:
            resp = await self._http.post(
                SERVICES_PATH, params=params, content=body.encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("nuonuo unreachable", extra={"error": type(exc).__name__})
            raise NuonuoError("NETWORK_ERROR", "nuonuo unreachable") from exc
        answer = self._json(resp)
        code = str(answer.get("code", ""))
        if code != SUCCESS:
            message = str(answer.get("describe", ""))
            log.info("nuonuo refused", extra={"code": code, "method": method})
            raise NuonuoError(code or f"HTTP_{resp.status_code}", message, status=resp.status_code)
        return answer.get("result")

    async def request_billing(self, order: Mapping[str, Any], *, user_tax: str) -> str:
        """nuonuo.OpeMplatform.requestBillingNew: submit an invoice; its invoiceSerialNum."""
        result = await self.call(ISSUE, {"order": order}, user_tax=user_tax)
        serial = result.get("invoiceSerialNum") if isinstance(result, dict) else None
        if not isinstance(serial, str) or not serial:
            raise NuonuoError("INVALID_RESPONSE", "answer without invoiceSerialNum")
        return serial

    async def query_invoice_result(
        self,
        *,
        user_tax: str,
        serial_nos: Sequence[str] = (),
        order_nos: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """nuonuo.OpeMplatform.queryInvoiceResult by serials or by order numbers."""
        payload = {
            "serialNos": list(serial_nos),
            "orderNos": list(order_nos),
            "isOfferInvoiceDetail": "0",
        }
        result = await self.call(QUERY, payload, user_tax=user_tax)
        if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
            raise NuonuoError("INVALID_RESPONSE", "query answer is not a list of invoices")
        return result
