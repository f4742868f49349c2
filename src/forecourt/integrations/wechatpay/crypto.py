"""WeChat Pay API v3 cryptography: request signing, answer verification, AES-GCM, paySign.

Pure functions over the `cryptography` library; nothing here does I/O or reads the clock.
Signatures are SHA256withRSA (PKCS#1 v1.5) in Base64; RSA keys under 2048 bits are refused.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import Mapping
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
AES_ALGORITHM = "AEAD_AES_256_GCM"
MIN_RSA_BITS = 2048
TIMESTAMP_WINDOW = timedelta(minutes=5)
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"

_ALPHANUM = string.ascii_letters + string.digits
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


class SignatureError(ValueError):
    """A signature, key or timestamp that does not check out."""


def nonce_str(length: int = 32) -> str:
    """A random alphanumeric nonce (WeChat uses 32 characters; AES-GCM nonces are 12)."""
    return "".join(secrets.choice(_ALPHANUM) for _ in range(length))


def _checked(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> None:
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {key.key_size} bits refused (at least {MIN_RSA_BITS})")


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """An RSA private key (PKCS#8 or PKCS#1 PEM) of at least 2048 bits; ValueError otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    _checked(key)
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from a PUBLIC KEY or CERTIFICATE PEM, at least 2048 bits."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"BEGIN CERTIFICATE" in data:
        return checked_public_key(x509.load_pem_x509_certificate(data).public_key())
    return checked_public_key(serialization.load_pem_public_key(data))


def checked_public_key(key: object) -> rsa.RSAPublicKey:
    """`key` if it is an RSA public key of at least 2048 bits; ValueError otherwise."""
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    _checked(key)
    return key


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM text of a private key."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    """SubjectPublicKeyInfo PEM text of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign(key: rsa.RSAPrivateKey, message: str | bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5) signature of `message`, Base64."""
    data = message.encode() if isinstance(message, str) else message
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: str | bytes, signature: str) -> bool:
    """Whether `signature` (Base64) is a SHA256withRSA signature of `message` by `key`."""
    data = message.encode() if isinstance(message, str) else message
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def request_message(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """The signed text of a request: METHOD, path with query, timestamp, nonce, body."""
    head = f"{method.upper()}\n{path_with_query}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The signed text of an answer or a notification: timestamp, nonce, body."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(
    *,
    mchid: str,
    serial_no: str,
    key: rsa.RSAPrivateKey,
    method: str,
    path_with_query: str,
    body: bytes,
    timestamp: str,
    nonce: str,
) -> str:
    """The `Authorization` header value of one request."""
    signature = sign(key, request_message(method, path_with_query, timestamp, nonce, body))
    return (
        f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def parse_authorization(header: str) -> dict[str, str] | None:
    """The fields of an `Authorization` header, or None if the schema is not ours."""
    schema, _, rest = header.strip().partition(" ")
    if schema != SCHEMA:
        return None
    return dict(_AUTH_FIELD.findall(rest))


def timestamp_fresh(timestamp: str, now: datetime) -> bool:
    """Whether a Unix-seconds timestamp is under five minutes from `now` (whole seconds)."""
    try:
        seconds = int(timestamp)
    except ValueError:
        return False
    return abs(int(now.timestamp()) - seconds) < TIMESTAMP_WINDOW.total_seconds()


def verify_signed(
    keys: Mapping[str, rsa.RSAPublicKey],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> str:
    """Check the Wechatpay-* headers of an answer or notification; the serial used.

    `headers` must have lower-case names; raises SignatureError.
    """
    serial = headers.get("wechatpay-serial", "")
    timestamp = headers.get("wechatpay-timestamp", "")
    nonce = headers.get("wechatpay-nonce", "")
    signature = headers.get("wechatpay-signature", "")
    if not (serial and timestamp and nonce and signature):
        raise SignatureError("Wechatpay-* signature headers missing")
    kind = headers.get("wechatpay-signature-type", SCHEMA)
    if kind != SCHEMA:
        raise SignatureError(f"unsupported signature type {kind}")
    key = keys.get(serial)
    if key is None:
        raise SignatureError(f"unknown Wechatpay-Serial {serial}")
    if not timestamp_fresh(timestamp, now):
        raise SignatureError("Wechatpay-Timestamp outside the five-minute window")
    if not verify(key, response_message(timestamp, nonce, body), signature):
        raise SignatureError("Wechatpay-Signature does not verify")
    return serial


def aes_gcm_encrypt(key: bytes, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """AES-GCM ciphertext with the tag appended, Base64 (WeChat's `ciphertext`)."""
    sealed = AESGCM(key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return base64.b64encode(sealed).decode()


def aes_gcm_decrypt(key: bytes, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """Open a WeChat `ciphertext` (Base64, tag appended); raises SignatureError."""
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        return AESGCM(key).decrypt(nonce.encode(), sealed, associated_data.encode())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise SignatureError("AES-GCM resource does not decrypt") from exc


def pay_sign(
    key: rsa.RSAPrivateKey, *, app_id: str, timestamp: str, nonce: str, package: str
) -> str:
    """`paySign` for wx.requestPayment: appId, timeStamp, nonceStr, package (signType unsigned)."""
    return sign(key, f"{app_id}\n{timestamp}\n{nonce}\n{package}\n")


def certificate_serial(certificate: x509.Certificate) -> str:
    """A certificate's serial number as WeChat writes it: upper-case hex."""
    return f"{certificate.serial_number:X}"


def self_signed_certificate(
    key: rsa.RSAPrivateKey, *, common_name: str, not_before: datetime, days: int
) -> x509.Certificate:
    """A self-signed X.509 certificate for `key` (sandbox platform certificates only)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forecourt sandbox (test-only)"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def certificate_pem(certificate: x509.Certificate) -> str:
    """PEM text of a certificate."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def generate_test_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key (test-only: sandboxes and generated demo merchants)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
