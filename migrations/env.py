"""Alembic environment: async engines, SQLite batch mode, or a connection handed in."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from forecourt.config import get_settings
from forecourt.db import UTCDateTime, make_engine
from forecourt.models import Base

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render project column types as plain SQLAlchemy types in migration files."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def do_run(connection: Connection) -> None:
    """Run the migrations on one connection."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async(url: str) -> None:
    """Open an async engine and migrate."""
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(do_run)
    await engine.dispose()


given = config.attributes.get("connection")
if given is not None:
    do_run(given)
else:
    asyncio.run(run_async(config.attributes.get("url") or get_settings().database_url))
