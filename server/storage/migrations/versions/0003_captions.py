"""captions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:13:02.148871
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import server.storage.types


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caption",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=True),
        sa.Column("speaker_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("track", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["speaker_id"], ["person.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("caption", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caption_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_caption_speaker_id"), ["speaker_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("caption", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caption_speaker_id"))
        batch_op.drop_index(batch_op.f("ix_caption_session_id"))

    op.drop_table("caption")
