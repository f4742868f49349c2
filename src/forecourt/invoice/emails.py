"""Invoice e-mail addresses: checked, masked for display and logs, encrypted at rest.

Stored form: ``version(1) || nonce(12) || AES-256-GCM ciphertext+tag`` under a sub-key of
the data key with its own associated-data label (an address cannot be replayed as a phone).
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from forecourt.kit.phones import derive_key

_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
_VERSION = b"\x01"
_NONCE = 12
_AAD = b"forecourt:invoice-email:v1"
MAX_LENGTH = 120


def normalize(raw: str) -> str | None:
    """The address trimmed with a lower-case domain; None when it is not an address."""
    text = raw.strip()
    if len(text) > MAX_LENGTH or not _EMAIL.match(text):
        return None
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def mask(email: str) -> str:
    """'driver.li@example.com' -> 'd***@example.com' (what logs and staff see)."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def encrypt(data_key: bytes, email: str) -> bytes:
    """AES-256-GCM ciphertext of an address with a fresh nonce."""
    nonce = os.urandom(_NONCE)
    key = derive_key(data_key, "invoice-email")
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, email.encode(), _AAD)


def decrypt(data_key: bytes, blob: bytes) -> str:
    """The address inside `blob`; ValueError when the blob is not ours or was altered."""
    if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        raise ValueError("unknown e-mail ciphertext format")
    key = derive_key(data_key, "invoice-email")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], _AAD).decode()
    except InvalidTag as exc:
        raise ValueError("e-mail ciphertext failed authentication") from exc
