"""knowledge cafés: the café's state, its tables, who sat where in each round, the tables' notes

Revision ID: 0007
Revises: 0008 (the room owner epoch of the scale-out work, written first in the same tree)
Create Date: 2026-12-02 17:44:57
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.storage.types

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cafe",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("phase", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("round_no", sa.Integer(), nullable=False),
        sa.Column("started_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("reporting_table_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_table(
        "cafe_table",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["person.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cafe_table", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cafe_table_host_id"), ["host_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cafe_table_session_id"), ["session_id"], unique=False)

    op.create_table(
        "cafe_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("round_no", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("insight", sa.Boolean(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("edited_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["table_id"], ["cafe_table.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cafe_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cafe_note_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cafe_note_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cafe_note_table_id"), ["table_id"], unique=False)

    op.create_table(
        "cafe_seat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("round_no", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("seated_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["table_id"], ["cafe_table.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cafe_seat", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cafe_seat_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cafe_seat_session_id"), ["session_id"], unique=False)
        batch_op.create_index("ix_cafe_seat_session_round", ["session_id", "round_no"], unique=False)
        batch_op.create_index(batch_op.f("ix_cafe_seat_table_id"), ["table_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cafe_seat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cafe_seat_table_id"))
        batch_op.drop_index("ix_cafe_seat_session_round")
        batch_op.drop_index(batch_op.f("ix_cafe_seat_session_id"))
        batch_op.drop_index(batch_op.f("ix_cafe_seat_person_id"))

    op.drop_table("cafe_seat")
    with op.batch_alter_table("cafe_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cafe_note_table_id"))
        batch_op.drop_index(batch_op.f("ix_cafe_note_session_id"))
        batch_op.drop_index(batch_op.f("ix_cafe_note_person_id"))

    op.drop_table("cafe_note")
    with op.batch_alter_table("cafe_table", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cafe_table_session_id"))
        batch_op.drop_index(batch_op.f("ix_cafe_table_host_id"))

    op.drop_table("cafe_table")
    op.drop_table("cafe")
