"""RSA keys and SHA256withRSA (PKCS#1 v1.5) signatures in Base64, as Chinese payment APIs use.

Keys are accepted as PEM (PKCS#1 or PKCS#8 / SubjectPublicKeyInfo) or as the bare Base64 DER
that vendors' key tools print. Keys under 2048 bits are refused (requirement R18).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MIN_BITS = 2048


def _material(text: str | bytes) -> tuple[bytes, bool]:
    raw = text.encode() if isinstance(text, str) else text
    raw = raw.strip()
    if raw.startswith(b"-----BEGIN"):
        return raw, True
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True), False
    except binascii.Error as exc:
        raise ValueError("key is neither PEM nor Base64 DER") from exc


def _check_size(bits: int) -> None:
    if bits < MIN_BITS:
        raise ValueError(f"RSA key of {bits} bits refused; at least {MIN_BITS} required")


def load_private_key(text: str | bytes) -> rsa.RSAPrivateKey:
    """Load an RSA private key (PEM or bare Base64 DER); ValueError if not RSA or too short."""
    data, is_pem = _material(text)
    if is_pem:
        key = serialization.load_pem_private_key(data, password=None)
    else:
        key = serialization.load_der_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    _check_size(key.key_size)
    return key


def load_public_key(text: str | bytes) -> rsa.RSAPublicKey:
    """Load an RSA public key (PEM or bare Base64 DER); ValueError if not RSA or too short."""
    data, is_pem = _material(text)
    if is_pem:  # "PUBLIC KEY" (SPKI) and "RSA PUBLIC KEY" (PKCS#1) both load here
        key = serialization.load_pem_public_key(data)
    else:
        key = serialization.load_der_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    _check_size(key.key_size)
    return key


def checked_public_key(key: object) -> rsa.RSAPublicKey:
    """`key` as an RSA public key of at least 2048 bits (e.g. from a certificate)."""
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    _check_size(key.key_size)
    return key


def sign(key: rsa.RSAPrivateKey, data: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5) signature of `data`, Base64 without line breaks."""
    _check_size(key.key_size)
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, data: bytes, signature: str) -> bool:
    """True when `signature` (Base64) is a valid SHA256withRSA signature of `data`."""
    try:
        raw = base64.b64decode("".join(signature.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def generate_test_key() -> rsa.RSAPrivateKey:
    """A fresh test-only RSA-2048 key for sandboxes and tests (never for production)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_BITS)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """The key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    """The key as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
