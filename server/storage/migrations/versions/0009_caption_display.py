"""caption display settings kept in the person's profile (text size, colours, position)

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03 03:10:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("caption_display", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("caption_display")
