"""pump_sales (station_id, ended_at) index

Book stock sums a station's sales since a tank's opening (`ended_at > book_since`), and the
nearby snapshot re-reads the availability of stations with new sales: both filter pump_sales
by station and end time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 22:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pump_sales", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pump_sales_station_ended", ["station_id", "ended_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pump_sales", schema=None) as batch_op:
        batch_op.drop_index("ix_pump_sales_station_ended")
