"""Migrations match the models and run down and up again on both engines."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from forecourt import migrate
from forecourt.db import Database
from forecourt.models import Base


def _diff(conn: Connection) -> list[Any]:
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # PostGIS adds its own tables and the generated geography column (migration 0002).
        if type_ == "table" and reflected and compare_to is None:
            return name in Base.metadata.tables
        return not (type_ in ("column", "index") and name in ("geog", "ix_stations_geog"))

    ctx = MigrationContext.configure(conn, opts={"include_object": include, "compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def test_schema_matches_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_downgrade_to_base_and_back(db: Database) -> None:
    await migrate.downgrade_engine(db.engine, "base")
    assert await migrate.current_revision(db.engine) is None
    await migrate.upgrade_engine(db.engine)
    assert await migrate.current_revision(db.engine) == migrate.head_revision()
