"""pump command resend event

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pump_commands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resend_event_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pump_commands", schema=None) as batch_op:
        batch_op.drop_column("resend_event_id")
