"""bus outbox: the bus messages of a shared room's committed events until Redis has taken them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 06:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.storage.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bus_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("node", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("bus_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bus_outbox_topic"), ["topic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bus_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bus_outbox_topic"))
    op.drop_table("bus_outbox")
