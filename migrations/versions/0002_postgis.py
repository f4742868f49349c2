"""PostGIS geography column and GiST index for nearest-station search (PostgreSQL only)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgis_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
    ).first()
    return found is not None


def upgrade() -> None:
    if not _postgis_available():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute(
        "ALTER TABLE stations ADD COLUMN geog geography(Point, 4326) "
        "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography) STORED"
    )
    op.execute("CREATE INDEX ix_stations_geog ON stations USING gist (geog)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_stations_geog")
    op.execute("ALTER TABLE stations DROP COLUMN IF EXISTS geog")
