"""Alipay open-platform RSA2 signing, the exact signed text of answers, and wire values.

Request: sort every non-empty parameter except `sign`, join `k=v&...` with raw (not
URL-encoded) values, SHA256withRSA, Base64. Answer: the signature covers the exact raw JSON
text of the `<method>_response` node. Notification: drop `sign` and `sign_type`, sort, join
the URL-decoded values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from forecourt.kit import clock, rsa
from forecourt.kit.money import yuan

SIGN_TYPE = "RSA2"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_YUAN = re.compile(r"^(-?)(\d{1,13})(?:\.(\d{1,2}))?$")


def request_content(params: Mapping[str, str]) -> str:
    """The text Alipay signs for a request: sorted non-empty `k=v` pairs except `sign`."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def notify_content(params: Mapping[str, str]) -> str:
    """The text a notification's `sign` covers: sorted `k=v` pairs except sign and sign_type."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def sign_request(key: rsa_keys.RSAPrivateKey, params: Mapping[str, str]) -> str:
    """RSA2 signature of a request's parameters."""
    return rsa.sign(key, request_content(params).encode())


def verify_request(key: rsa_keys.RSAPublicKey, params: Mapping[str, str]) -> bool:
    """True when the request's `sign` matches its other parameters."""
    return rsa.verify(key, request_content(params).encode(), params.get("sign", ""))


def sign_notification(key: rsa_keys.RSAPrivateKey, params: Mapping[str, str]) -> str:
    """RSA2 signature of a notification's fields."""
    return rsa.sign(key, notify_content(params).encode())


def verify_notification(key: rsa_keys.RSAPublicKey, params: Mapping[str, str]) -> bool:
    """True when the notification's `sign` matches its other fields."""
    return rsa.verify(key, notify_content(params).encode(), params.get("sign", ""))


def compact_json(value: Any) -> str:
    """JSON without spaces, non-ASCII kept (biz_content and answer nodes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def signed_answer(key: rsa_keys.RSAPrivateKey, node_name: str, node: Mapping[str, Any]) -> str:
    """A gateway answer `{"<node_name>":{...},"sign":"..."}` signed over the node's text."""
    text = compact_json(node)
    return f'{{"{node_name}":{text},"sign":"{rsa.sign(key, text.encode())}"}}'


def response_node(raw: str, node_name: str) -> str | None:
    """The exact raw JSON text of the top-level `node_name` value (what `sign` covers)."""
    decoder = json.JSONDecoder()
    ws = " \t\r\n"

    def skip(i: int) -> int:
        while i < len(raw) and raw[i] in ws:
            i += 1
        return i

    i = skip(0)
    if i >= len(raw) or raw[i] != "{":
        return None
    i = skip(i + 1)
    try:
        while i < len(raw) and raw[i] != "}":
            key, i = decoder.raw_decode(raw, i)
            i = skip(i)
            if raw[i] != ":":
                return None
            start = skip(i + 1)
            _, end = decoder.raw_decode(raw, start)
            if key == node_name:
                return raw[start:end]
            i = skip(end)
            if i < len(raw) and raw[i] == ",":
                i = skip(i + 1)
    except (ValueError, IndexError):
        return None
    return None


def fen(text: str) -> int:
    """A wire amount in yuan ("12.34", "-1.50") as integer fen; ValueError if malformed."""
    match = _YUAN.match(text.strip())
    if match is None:
        raise ValueError(f"not a yuan amount: {text!r}")
    sign, whole, part = match.groups()
    value = int(whole) * 100 + int((part or "").ljust(2, "0"))
    return -value if sign else value


def amount(fen_value: int) -> str:
    """Integer fen as Alipay's yuan string: 1234 -> "12.34"."""
    return yuan(fen_value)


def wire_time(moment: datetime | None = None) -> str:
    """`yyyy-MM-dd HH:mm:ss` in Asia/Shanghai (now when not given)."""
    return clock.local(moment or clock.now()).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """A wire time (Asia/Shanghai; `.SSS` allowed) as an aware UTC datetime; ValueError if bad."""
    text = text.strip()
    naive = datetime.strptime(text, TIME_FORMAT + (".%f" if "." in text else ""))
    return naive.replace(tzinfo=clock.BUSINESS_TZ).astimezone(UTC)
