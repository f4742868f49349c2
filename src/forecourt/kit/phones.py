"""Mainland China mobile numbers: validation, masking, encryption at rest and blind index.

Stored form: ``version(1) || nonce(12) || AES-256-GCM ciphertext+tag``, with a fixed
associated-data label so a phone ciphertext cannot be replayed into another field. Look-ups use
a keyed HMAC-SHA256 ("blind index") whose key is derived from the data key with HKDF, so the
index reveals nothing without the key and never equals the encryption key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = re.compile(r"[\s-]")
_VERSION = b"\x01"
_NONCE = 12
_AAD = b"forecourt:phone:v1"


class InvalidPhone(ValueError):
    """Not a mainland China mobile number."""


def normalize(raw: str) -> str:
    """The 11-digit form of a mainland mobile number (spaces, dashes and +86 allowed)."""
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise InvalidPhone("not a mainland China mobile number (11 digits starting 13-19)")
    return digits


def is_valid(raw: str) -> bool:
    """True when `raw` normalizes to a mainland mobile number."""
    try:
        normalize(raw)
    except InvalidPhone:
        return False
    return True


def mask(phone: str) -> str:
    """'13812345678' -> '138****5678'."""
    return f"{phone[:3]}****{phone[-4:]}"


@lru_cache(maxsize=32)
def derive_key(data_key: bytes, purpose: str) -> bytes:
    """A 32-byte sub-key of the data key for one purpose (HKDF-SHA256)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"forecourt",
        info=f"forecourt:{purpose}".encode(),
    )
    return hkdf.derive(data_key)


def blind_index(data_key: bytes, phone: str) -> str:
    """Keyed hash of a normalized number for equality look-ups (64 hex characters)."""
    key = derive_key(data_key, "phone-index")
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()


def encrypt(data_key: bytes, phone: str) -> bytes:
    """AES-256-GCM ciphertext of a normalized number, with a fresh random nonce."""
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(data_key).encrypt(nonce, phone.encode(), _AAD)


def decrypt(data_key: bytes, blob: bytes) -> str:
    """The number inside `blob`; ValueError when the blob is not ours or was altered."""
    if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        raise ValueError("unknown phone ciphertext format")
    nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
    try:
        return AESGCM(data_key).decrypt(nonce, body, _AAD).decode()
    except InvalidTag as exc:
        raise ValueError("phone ciphertext failed authentication") from exc
