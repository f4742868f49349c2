"""`forecourt serial verify` works offline with the process's key."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.config import get_settings


@pytest.fixture
def data_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FORECOURT_DATA_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("FORECOURT_JWT_SECRET", secrets.token_urlsafe(32))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_serial_new_and_verify(data_key: None) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["serial", "new", "--device", "pos-3"])
    assert made.exit_code == 0, made.output
    serial = made.stdout.strip()
    ok = runner.invoke(app, ["serial", "verify", serial, "--device", "pos-3"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("valid: issued ")
    other = runner.invoke(app, ["serial", "verify", serial, "--device", "pos-4"])
    assert other.exit_code == 1
    forged = serial[:-1] + ("B" if serial[-1] != "B" else "C")
    assert runner.invoke(app, ["serial", "verify", forged]).exit_code == 1
