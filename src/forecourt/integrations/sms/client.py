"""SMS gateway client: one JSON call, signed with the API key.

Wire format (our gateway contract; docs/auth.md):
``POST /v1/sms/send`` with body ``{"phone", "template", "params": {str: str}}`` and headers
``X-Api-Timestamp`` (unix seconds), ``X-Api-Nonce`` (random hex, single use) and
``X-Api-Signature`` = base64(HMAC-SHA256(api_key, f"{timestamp}\\n{nonce}\\n{body}")).
Success: 200 ``{"message_id", "status": "accepted"}``; failure: 4xx/5xx ``{"error", "message"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from typing import Protocol

import httpx
import orjson

from forecourt.kit import clock

log = logging.getLogger(__name__)

SEND_PATH = "/v1/sms/send"


class SmsError(Exception):
    """The gateway refused the message (`error` names why) or could not be reached."""

    def __init__(self, error: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"sms gateway: {error}: {message}")
        self.error = error
        self.message = message
        self.status = status


class SmsGateway(Protocol):
    """Sends templated text messages."""

    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> str:
        """Send one message; return the gateway's message id."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def sign(api_key: str, *, timestamp: str, nonce: str, body: bytes) -> str:
    """The request signature both sides compute."""
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body
    return base64.b64encode(hmac.new(api_key.encode(), message, hashlib.sha256).digest()).decode()


class SmsClient:
    """httpx client for the SMS gateway (or its sandbox, through an injected transport)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._api_key = api_key
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)

    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> str:
        """Send one message; return the gateway's message id."""
        body = orjson.dumps({"phone": phone, "template": template, "params": params})
        timestamp = str(int(clock.now().timestamp()))
        nonce = secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json",
            "X-Api-Timestamp": timestamp,
            "X-Api-Nonce": nonce,
            "X-Api-Signature": sign(self._api_key, timestamp=timestamp, nonce=nonce, body=body),
        }
        try:
            resp = await self._http.post(SEND_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("sms gateway unreachable", extra={"error": type(exc).__name__})
            raise SmsError("unreachable", "sms gateway unreachable") from exc
        try:
            answer = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if resp.status_code != 200 or "message_id" not in answer:
            error = str(answer.get("error", "http_error"))
            log.warning(
                "sms gateway refused",
                extra={"status": resp.status_code, "error": error, "template": template},
            )
            raise SmsError(error, str(answer.get("message", "")), status=resp.status_code)
        return str(answer["message_id"])

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()
