"""attendance for the key figures: anonymous viewers, external view counts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:55:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attendance_visit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anonymous_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.alter_column("person_id", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "external_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("imported_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "platform", name="uq_external_views"),
    )
    with op.batch_alter_table("external_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_external_views_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("external_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_external_views_session_id"))
    op.drop_table("external_views")
    op.execute("DELETE FROM attendance_visit WHERE person_id IS NULL")
    with op.batch_alter_table("attendance_visit", schema=None) as batch_op:
        batch_op.alter_column("person_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("anonymous_key")
