"""Transaction serial numbers (R19): time + device digest + random salt + HMAC check.

A serial is 32 characters, safe as a WeChat/Alipay/UnionPay merchant order number:

    yyMMddHHmmss T SSS  DDDD   SSSSSS  CCCCCC
    business time      device  salt    check

* yyMMddHHmmss T SSS is the issue time in Asia/Shanghai, to the millisecond;
* DDDD is a digest of the issuing device's fingerprint (terminal id, app install id, node
  name), so a serial can be traced to a device without naming it;
* SSSSSS is a random salt (about 27 bits; a process also never repeats a serial);
* CCCCCC is an HMAC-SHA256 check (about 27 bits) over the first 26 characters.

The last three parts use the 22 letters of Crockford's alphabet and no digits, so a serial
never holds a run of more than 12 digits and cannot be mistaken for a card number (R17).
Anyone holding the key verifies a serial offline (`forecourt serial verify SERIAL`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from forecourt.kit import clock

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 32
_TIME = 16
_DEVICE = 4
_SALT = 6
_CHECK = 6
_lock = threading.Lock()
_recent: tuple[str, set[str]] = ("", set())


def _letters(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def device_digest(fingerprint: str) -> str:
    """Four characters identifying a device fingerprint."""
    digest = int.from_bytes(hashlib.sha256(fingerprint.encode()).digest()[:8], "big")
    return _letters(digest, _DEVICE)


def _check(key: bytes, body: str) -> str:
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return _letters(int.from_bytes(mac[:8], "big"), _CHECK)


def new_serial(key: bytes, *, device: str, now: datetime | None = None) -> str:
    """A fresh serial, never repeated by this process."""
    global _recent
    stamp = clock.local(now or clock.now()).strftime("%y%m%d%H%M%ST%f")[:_TIME]
    prefix = stamp + device_digest(device)
    with _lock:
        while True:
            body = prefix + _letters(secrets.randbelow(len(ALPHABET) ** _SALT), _SALT)
            seen_stamp, seen = _recent
            if seen_stamp != stamp:
                _recent = (stamp, {body})
                break
            if body not in seen:
                seen.add(body)
                break
    return body + _check(key, body)


@dataclass(frozen=True)
class SerialCheck:
    """The outcome of verifying a serial."""

    valid: bool
    reason: str | None
    issued_at: datetime | None = None
    device: str | None = None


def verify_shape(serial: str) -> bool:
    """Whether a string has the shape of a serial (no key: says nothing of authenticity)."""
    if len(serial) != LENGTH:
        return False
    stamp, rest = serial[:_TIME], serial[_TIME:]
    digits = stamp[:12] + stamp[13:]
    return digits.isdigit() and stamp[12] == "T" and all(ch in ALPHABET for ch in rest)


def verify(key: bytes, serial: str, *, device: str | None = None) -> SerialCheck:
    """Check a serial's shape, time, check characters and (optionally) its device."""
    if len(serial) != LENGTH:
        return SerialCheck(False, f"must be {LENGTH} characters")
    stamp, rest = serial[:_TIME], serial[_TIME:]
    digits = stamp[:12] + stamp[13:]
    if not digits.isdigit() or stamp[12] != "T" or any(ch not in ALPHABET for ch in rest):
        return SerialCheck(False, "unexpected characters")
    try:
        issued = datetime.strptime(digits + "000", "%y%m%d%H%M%S%f").replace(
            tzinfo=clock.BUSINESS_TZ
        )
    except ValueError:
        return SerialCheck(False, "not a valid time")
    body, check = serial[: LENGTH - _CHECK], serial[LENGTH - _CHECK :]
    if not hmac.compare_digest(_check(key, body), check):
        return SerialCheck(False, "check characters do not match (forged or mistyped)")
    digest = serial[_TIME : _TIME + _DEVICE]
    if device is not None and device_digest(device) != digest:
        return SerialCheck(False, "issued by another device", issued, digest)
    return SerialCheck(True, None, issued, digest)
