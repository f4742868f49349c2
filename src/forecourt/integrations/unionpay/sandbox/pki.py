"""The sandbox's own test-only certificate authority: root, middle and UnionPay signing cert.

Generated fresh at construction (RSA-2048). The bundle (root + middle PEM) is what
`unionpay_root_cert` must hold for clients to trust the sandbox's `signPubKeyCert`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from cryptography.x509.oid import NameOID

from forecourt.integrations.unionpay.crypto import UNIONPAY_CN_NAME
from forecourt.kit import clock, rsa

SIGNING_CN = f"041@Z12@{UNIONPAY_CN_NAME}@00000001"


def name(cn: str, ou: str = "Forecourt sandbox (test-only)") -> x509.Name:
    """A subject/issuer name marked as a test-only sandbox identity."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China UnionPay sandbox (test-only)"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def issue(
    subject: x509.Name,
    key: rsa_keys.RSAPublicKey,
    issuer: x509.Name,
    issuer_key: rsa_keys.RSAPrivateKey,
    *,
    ca: bool,
    not_before: datetime | None = None,
    days: int = 3650,
) -> x509.Certificate:
    """A certificate for `key` signed by `issuer_key` (SHA-256)."""
    start = not_before or clock.now() - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert: x509.Certificate) -> str:
    """The certificate as PEM text."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class SandboxPki:
    """Test-only keys and certificates of the emulated UnionPay."""

    root: x509.Certificate
    middle: x509.Certificate
    signing: x509.Certificate
    signing_key: rsa_keys.RSAPrivateKey

    @property
    def bundle_pem(self) -> str:
        """Root and middle certificates: the value for `unionpay_root_cert`."""
        return pem(self.root) + pem(self.middle)

    @property
    def signing_pem(self) -> str:
        """The signing certificate, sent as `signPubKeyCert`."""
        return pem(self.signing)


def make_sandbox_pki() -> SandboxPki:
    """A fresh root CA, a middle CA under it and a UnionPay signing certificate under that."""
    root_key, middle_key, signing_key = (rsa.generate_test_key() for _ in range(3))
    root_name = name("CFCA TEST CS CA (sandbox, test-only)")
    middle_name = name("CFCA TEST OCA1 (sandbox, test-only)")
    root = issue(root_name, root_key.public_key(), root_name, root_key, ca=True)
    middle = issue(middle_name, middle_key.public_key(), root_name, root_key, ca=True)
    signing = issue(
        name(SIGNING_CN, "UnionPay signing (sandbox, test-only)"),
        signing_key.public_key(),
        middle_name,
        middle_key,
        ca=False,
        days=730,
    )
    return SandboxPki(root=root, middle=middle, signing=signing, signing_key=signing_key)


def sandbox_cert_id() -> str:
    """A decimal certificate serial number for a test-only merchant key."""
    return str(secrets.randbelow(10**11) + 10**10)
