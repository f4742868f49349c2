"""Shared fixtures: every database test runs on SQLite and on real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from forecourt import logs, migrate
from forecourt.app import create_app
from forecourt.config import Settings
from forecourt.db import Database, make_engine
from forecourt.kit import clock, refcache
from forecourt.kit.pan import find_pans
from forecourt.models import Base
from forecourt.runtime import Runtime, build

_LOGGED_CARDS: list[str] = []


def _scan_log_lines(formatter: type[logging.Formatter]) -> None:
    """Every formatted log line of the run is checked for card numbers (R17)."""
    original = formatter.format

    def format(self: logging.Formatter, record: logging.LogRecord) -> str:
        line = original(self, record)
        _LOGGED_CARDS.extend(f"{record.name}: {pan}" for pan in find_pans(line))
        return line

    formatter.format = format  # type: ignore[method-assign]


_scan_log_lines(logs.JsonFormatter)
_scan_log_lines(logs.TextFormatter)


@pytest.fixture(autouse=True)
def _no_card_numbers_logged() -> Iterator[None]:
    """Fail the test that logged something looking like a card number."""
    before = len(_LOGGED_CARDS)
    yield
    assert _LOGGED_CARDS[before:] == [], "card numbers in the logs"


PG_URL = os.environ.get("FORECOURT_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In CI a missing PostgreSQL is an error, never a silent skip."""
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI requires FORECOURT_TEST_POSTGRES_URL (PostgreSQL suite)")


def test_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a test run: generated secrets, no background loops."""
    values: dict[str, object] = {
        "env": "test",
        "database_url": database_url,
        "jwt_secret": secrets.token_urlsafe(32),
        "data_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "show_sandbox_sms_code": True,
        "run_dispatcher": False,
        "run_scheduler": False,
        "run_pump_link": False,
        "run_speaker": False,
        "log_json": True,
        "access_log": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _create_pg_database() -> tuple[str, str]:
    assert PG_URL
    name = f"forecourt_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(str(make_url(PG_URL).set(database="postgres")))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return str(make_url(PG_URL).set(database=name)), name


async def _drop_pg_database(name: str) -> None:
    assert PG_URL
    admin = make_engine(str(make_url(PG_URL).set(database="postgres")))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A freshly migrated database per backend for the whole session."""
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("FORECOURT_TEST_POSTGRES_URL not set (required in CI)")
        url, name = await _create_pg_database()
    else:
        path: Path = tmp_path_factory.mktemp("db") / "test.db"
        url, name = f"sqlite+aiosqlite:///{path}", ""
    db = Database(url)
    await migrate.upgrade_engine(db.engine)
    yield db
    await db.dispose()
    if name:
        await _drop_pg_database(name)


async def _truncate(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))


async def _card_numbers_stored(db: Database) -> list[str]:
    """Every value in every table that looks like a card number (R17: never stored)."""
    found: list[str] = []
    async with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(table.select())).all():
                text_ = " ".join(str(v) for v in row if not isinstance(v, float))  # not 25.04123…
                found += [f"{table.name}: {pan}" for pan in find_pans(text_)]
    return found


@pytest.fixture
async def db(database: Database) -> AsyncIterator[Database]:
    """The session database, scanned for card numbers and emptied after each test."""
    yield database
    stored = await _card_numbers_stored(database)
    await _truncate(database)
    refcache.clear_all()
    assert stored == [], f"card numbers stored in the database: {stored}"


@pytest.fixture
def settings(db: Database) -> Settings:
    """Test settings bound to the test database."""
    return test_settings(db.url)


@pytest.fixture
async def runtime(settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    """A runtime that shares the test database."""
    rt = build(settings)
    await rt.db.dispose()
    rt.db = db
    yield rt
    await rt.stop(close_db=False)  # the session database outlives the test


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


# A background loop left running polls the shared session database and competes with later
# tests (a stray speaker sender claims their announcements), so each test must stop its own.
BACKGROUND_LOOPS = ("speaker-sender", "outbox-dispatcher", "pump-link", "task-scheduler", "sim-")


@pytest.fixture(autouse=True)
async def _no_background_loop_left() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before if t.get_name().startswith(BACKGROUND_LOOPS)]
    for task in left:
        task.cancel()
    assert not left, f"background loops left running: {sorted(t.get_name() for t in left)}"


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()
