"""attendance aggregates: one row per attendee of a session, each session's peak

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 13:10:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_attendee",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("attendee", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("attended_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "attendee", name="uq_session_attendee"),
    )
    with op.batch_alter_table("session_attendee", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_attendee_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_attendee_session_id"), ["session_id"], unique=False)
    op.create_table(
        "session_stats",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("peak_concurrent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("attendance_visit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counted_to", server.storage.types.UTCDateTime(timezone=True), nullable=True))
    # Visits recorded before this revision: their aggregates are computed once, here.
    from sqlmodel import Session

    from server import attendance

    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT session_id FROM attendance_visit"))]
    if ids:
        with Session(bind=bind) as db:
            attendance.rebuild(db, ids)
            db.flush()


def downgrade() -> None:
    with op.batch_alter_table("attendance_visit", schema=None) as batch_op:
        batch_op.drop_column("counted_to")
    op.drop_table("session_stats")
    with op.batch_alter_table("session_attendee", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_attendee_session_id"))
        batch_op.drop_index(batch_op.f("ix_session_attendee_person_id"))
    op.drop_table("session_attendee")
