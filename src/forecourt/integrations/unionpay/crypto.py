"""UnionPay signMethod 01 signatures and the trust check of `signPubKeyCert`.

Sign: sort every field except `signature`, join `k=v&...`, take the lowercase hex SHA-256 of
that text, SHA256withRSA over the hex string (UTF-8 bytes), Base64. An answer or notification
carries UnionPay's signing certificate in `signPubKeyCert`; it is trusted only when it chains
to the configured root/middle certificates, is within its validity dates and its CN names
中国银联股份有限公司 (CN `<x>@<y>@中国银联股份有限公司@<n>`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from cryptography.x509.oid import NameOID

from forecourt.kit import clock, rsa

SIGN_METHOD = "01"
VERSION = "5.1.0"
UNIONPAY_CN_NAME = "中国银联股份有限公司"
TIME_FORMAT = "%Y%m%d%H%M%S"


def sign_content(fields: Mapping[str, str]) -> str:
    """The sorted `k=v&...` text of every field except `signature`."""
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")


def digest_hex(fields: Mapping[str, str]) -> str:
    """Lowercase hex SHA-256 of the sorted text: what signMethod 01 actually signs."""
    return hashlib.sha256(sign_content(fields).encode()).hexdigest()


def sign(key: rsa_keys.RSAPrivateKey, fields: Mapping[str, str]) -> str:
    """The `signature` of `fields`."""
    return rsa.sign(key, digest_hex(fields).encode())


def verify(key: rsa_keys.RSAPublicKey, fields: Mapping[str, str]) -> bool:
    """True when `fields["signature"]` matches the other fields."""
    return rsa.verify(key, digest_hex(fields).encode(), fields.get("signature", ""))


def wire_time(moment: datetime | None = None) -> str:
    """`yyyyMMddHHmmss` in Asia/Shanghai (now when not given)."""
    return clock.local(moment or clock.now()).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """A `yyyyMMddHHmmss` wire time (Asia/Shanghai) as aware UTC; ValueError if malformed."""
    naive = datetime.strptime(text, TIME_FORMAT)
    return naive.replace(tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


def trace_moment(trace_time: str, txn_time: str) -> datetime:
    """A `MMddHHmmss` traceTime as aware UTC, its year taken from the order's txnTime."""
    ordered = parse_time(txn_time)
    year = clock.local(ordered).year
    moment = parse_time(f"{year}{trace_time}")
    if moment < ordered - timedelta(days=1):
        moment = parse_time(f"{year + 1}{trace_time}")  # paid in January for a December order
    return moment


def load_certificates(pem: str | bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; ValueError if there is none."""
    data = pem.encode() if isinstance(pem, str) else pem
    certs = x509.load_pem_x509_certificates(data)
    if not certs:
        raise ValueError("no certificate in PEM")
    return certs


def common_name(cert: x509.Certificate) -> str:
    """The subject's CN ("" when absent)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _current(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


class CertTrust:
    """Decides whether a `signPubKeyCert` is UnionPay's, given the root and middle certs."""

    def __init__(self, bundle_pem: str | bytes) -> None:
        self.anchors = load_certificates(bundle_pem)
        self._cache: dict[str, x509.Certificate] = {}

    def _issuer(self, cert: x509.Certificate) -> x509.Certificate | None:
        for candidate in self.anchors:
            if candidate.subject != cert.issuer or not _is_ca(candidate):
                continue
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return candidate
        return None

    def public_key(self, cert_pem: str) -> rsa_keys.RSAPublicKey:
        """The signing key of a trusted UnionPay certificate; ValueError naming the defect."""
        now = clock.now()
        leaf = self._cache.get(cert_pem)
        if leaf is None:
            leaf = load_certificates(cert_pem)[0]
            parts = common_name(leaf).split("@")
            if len(parts) < 3 or parts[2] != UNIONPAY_CN_NAME:
                raise ValueError("signPubKeyCert does not name UnionPay")
            chain, cert = [leaf], leaf
            while cert.issuer != cert.subject or cert is leaf:
                issuer = self._issuer(cert)
                if issuer is None:
                    raise ValueError("signPubKeyCert does not chain to the configured root")
                if issuer in chain:
                    break
                chain.append(issuer)
                cert = issuer
            if any(not _current(c, now) for c in chain):
                raise ValueError("certificate chain outside its validity dates")
            self._cache[cert_pem] = leaf
        if not _current(leaf, now):
            raise ValueError("signPubKeyCert outside its validity dates")
        return rsa.checked_public_key(leaf.public_key())

    def verify(self, fields: Mapping[str, str]) -> bool:
        """True when `signPubKeyCert` is trusted and `signature` verifies with it."""
        try:
            key = self.public_key(fields.get("signPubKeyCert", ""))
        except ValueError:
            return False
        return verify(key, fields)
