"""A wire-exact emulator of the SMS gateway that records what it "sends".

In-process (tests, demo) the real `SmsClient` talks to `sandbox.app` through
`httpx.ASGITransport`; standalone it runs with
`uvicorn --factory forecourt.integrations.sms.sandbox:create_app`. It checks the signature,
the timestamp window and nonce reuse exactly as a production gateway must, and keeps the last
messages in memory so tests and the demo can read a code (`last_code`,
`GET /sandbox/messages?phone=`). It never logs a phone number or a message text.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forecourt.integrations.sms.client import SEND_PATH, sign
from forecourt.kit import clock, phones

TEMPLATES = {
    "login_code": "【Forecourt】您的登录验证码是{code}，{minutes}分钟内有效，请勿泄露。",
}
CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class SentSms:
    """One accepted message."""

    message_id: str
    phone: str
    template: str
    params: dict[str, str]
    text: str
    sent_at: datetime = field(default_factory=clock.now)


def _error(status: int, error: str, message: str) -> Response:
    body = orjson.dumps({"error": error, "message": message})
    return Response(body, status_code=status, media_type="application/json")


class SmsSandbox:
    """State of the emulated gateway: accepted messages, seen nonces, injected faults."""

    def __init__(self, *, api_key: str, keep: int = 1000) -> None:
        self._api_key = api_key
        self.sent: deque[SentSms] = deque(maxlen=keep)
        self._nonces: dict[str, float] = {}
        self._faults: deque[tuple[int, str]] = deque()
        self.app = Starlette(
            routes=[
                Route(SEND_PATH, self._send, methods=["POST"]),
                Route("/sandbox/messages", self._messages_http, methods=["GET"]),
            ]
        )

    # -- controls for tests and the demo ---------------------------------------------------

    def messages(self, phone: str) -> list[SentSms]:
        """Messages accepted for `phone`, oldest first."""
        return [m for m in self.sent if m.phone == phone]

    def last_code(self, phone: str) -> str | None:
        """The code in the newest login-code message to `phone`, if any."""
        for message in reversed(self.sent):
            if message.phone == phone and message.template == "login_code":
                return message.params.get("code")
        return None

    def fail_next(self, *, status: int = 503, error: str = "unavailable", times: int = 1) -> None:
        """Refuse the next `times` sends with this status and error."""
        self._faults.extend([(status, error)] * times)

    # -- the gateway -----------------------------------------------------------------------

    def _check_auth(self, request: Request, body: bytes) -> Response | None:
        timestamp = request.headers.get("x-api-timestamp", "")
        nonce = request.headers.get("x-api-nonce", "")
        signature = request.headers.get("x-api-signature", "")
        if not (timestamp.isdigit() and nonce and signature):
            return _error(401, "unauthenticated", "signature headers missing")
        expected = sign(self._api_key, timestamp=timestamp, nonce=nonce, body=body)
        if not secrets.compare_digest(signature, expected):
            return _error(401, "bad_signature", "signature does not match")
        now = clock.now().timestamp()
        if abs(now - int(timestamp)) > CLOCK_SKEW_SECONDS:
            return _error(401, "stale_timestamp", "timestamp outside the allowed window")
        for seen in [n for n, at in self._nonces.items() if at < now - 2 * CLOCK_SKEW_SECONDS]:
            del self._nonces[seen]
        if nonce in self._nonces:
            return _error(409, "replayed_nonce", "nonce already used")
        self._nonces[nonce] = now
        return None

    async def _send(self, request: Request) -> Response:
        body = await request.body()
        refused = self._check_auth(request, body)
        if refused is not None:
            return refused
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "bad_request", "body is not JSON")
        if not isinstance(data, dict):
            return _error(400, "bad_request", "body must be an object")
        phone = data.get("phone")
        if not isinstance(phone, str) or not phones.is_valid(phone) or len(phone) != 11:
            return _error(400, "invalid_phone", "phone must be an 11-digit mainland mobile number")
        template = TEMPLATES.get(str(data.get("template")))
        if template is None:
            return _error(400, "unknown_template", "no such template")
        params = data.get("params")
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return _error(400, "bad_request", "params must map names to strings")
        try:
            text = template.format(**params)
        except KeyError as exc:
            return _error(400, "missing_param", f"template parameter {exc.args[0]} missing")
        if self._faults:
            status, error = self._faults.popleft()
            return _error(status, error, "injected failure")
        message = SentSms(
            message_id=f"sms_{secrets.token_hex(12)}",
            phone=phone,
            template=str(data["template"]),
            params=dict(params),
            text=text,
        )
        self.sent.append(message)
        answer = {"message_id": message.message_id, "status": "accepted"}
        return Response(orjson.dumps(answer), media_type="application/json")

    async def _messages_http(self, request: Request) -> Response:
        phone = request.query_params.get("phone", "")
        items: list[dict[str, Any]] = [
            {
                "message_id": m.message_id,
                "phone": m.phone,
                "template": m.template,
                "params": m.params,
                "text": m.text,
                "sent_at": m.sent_at.isoformat(),
            }
            for m in self.messages(phone)
        ]
        return Response(orjson.dumps({"messages": items}), media_type="application/json")


def create_app() -> Starlette:
    """Standalone sandbox using FORECOURT_SMS_API_KEY."""
    from forecourt.config import Settings

    settings = Settings()
    key = settings.sms_api_key.get_secret_value() if settings.sms_api_key else "sandbox"
    return SmsSandbox(api_key=key).app
