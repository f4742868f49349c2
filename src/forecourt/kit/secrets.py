"""Process secrets: from settings in production, generated under ./var/ for the demo."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from forecourt.config import VAR_DIR, Settings


@dataclass(frozen=True)
class Secrets:
    """Key material the process needs."""

    jwt_key: bytes
    data_key: bytes


def _generated(path: Path) -> dict[str, str]:
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {
        "jwt_secret": base64.b64encode(secrets.token_bytes(32)).decode(),
        "data_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


def load(settings: Settings) -> Secrets:
    """Secrets from settings; outside production, missing ones are generated once and kept."""
    jwt = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    data = settings.data_key.get_secret_value() if settings.data_key else None
    if jwt is None or data is None:
        if settings.env == "prod":
            raise RuntimeError("FORECOURT_JWT_SECRET and FORECOURT_DATA_KEY are required in prod")
        generated = _generated(VAR_DIR / "secrets.json")
        jwt = jwt or generated["jwt_secret"]
        data = data or generated["data_key"]
    key = base64.b64decode(data)
    if len(key) != 32:
        raise RuntimeError("FORECOURT_DATA_KEY must be 32 bytes, base64-encoded")
    return Secrets(jwt_key=jwt.encode(), data_key=key)
