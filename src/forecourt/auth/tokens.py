"""JWT access tokens (HS256) and opaque refresh tokens (stored by hash)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import jwt

from forecourt.errors import Unauthorized
from forecourt.kit import clock

Kind = Literal["member", "staff"]
ISSUER = "forecourt"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a driver (member) or a staff account with a role."""

    kind: Kind
    id: int
    role: str | None = None
    station_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def subject(self) -> str:
        """'member:12' or 'staff:3'."""
        return f"{self.kind}:{self.id}"


def issue_access(key: bytes, *, kind: Kind, subject_id: int, role: str | None, ttl: int) -> str:
    """Sign a short-lived access token."""
    now = clock.now()
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": f"{kind}:{subject_id}",
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if role:
        claims["role"] = role
    return jwt.encode(claims, key, algorithm="HS256")


def read_access(key: bytes, token: str) -> Principal:
    """Verify an access token and return its principal (no database look-up)."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iat"], "verify_iat": False, "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid access token") from exc
    if int(claims["exp"]) <= clock.now().timestamp():
        raise Unauthorized("access token expired")
    if claims.get("typ") != "access":
        raise Unauthorized("not an access token")
    kind, _, raw_id = str(claims["sub"]).partition(":")
    if kind not in ("member", "staff") or not raw_id.isdigit():
        raise Unauthorized("invalid subject")
    return Principal(kind=kind, id=int(raw_id), role=claims.get("role"))  # type: ignore[arg-type]


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the id it is stored under (a hash of it)."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_id(token)


def refresh_token_id(token: str) -> str:
    """The stored id of a refresh token: 36 hex characters of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:36]
