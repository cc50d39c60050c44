"""room owner epoch: the epoch of the process that owns a shared room (fences a former owner's writes)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 17:50:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("room") as batch:
        batch.add_column(sa.Column("owner_epoch", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("room") as batch:
        batch.drop_column("owner_epoch")
