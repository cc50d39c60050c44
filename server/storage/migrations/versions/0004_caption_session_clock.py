"""captions on the session's clock: when each caption's first word was spoken

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:30:00
"""

import sqlalchemy as sa
from alembic import op

import server.storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("caption", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", server.storage.types.UTCDateTime(timezone=True), nullable=True))
    # Captions stored before this revision: their commit time is the best estimate there is.
    op.execute("UPDATE caption SET started_at = created_at")
    with op.batch_alter_table("caption", schema=None) as batch_op:
        batch_op.alter_column(
            "started_at", existing_type=server.storage.types.UTCDateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("caption", schema=None) as batch_op:
        batch_op.drop_column("started_at")
