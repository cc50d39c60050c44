"""live rooms and attendance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:41:42.974452
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import server.storage.types


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attendance_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("joined_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attendance_visit", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_person_session", ["person_id", "session_id", "channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_attendance_visit_left_at"), ["left_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_attendance_visit_session_id"), ["session_id"], unique=False)

    op.create_table(
        "chat_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["deleted_by"], ["person.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chat_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_message_deleted_by"), ["deleted_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_message_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_message_session_id"), ["session_id"], unique=False)

    op.create_table(
        "moderation_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("target_person_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["person.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_person_id"], ["person.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moderation_action_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_moderation_action_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_moderation_action_target_person_id"), ["target_person_id"], unique=False)

    op.create_table(
        "poll",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("question", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("multiple", sa.Boolean(), nullable=False),
        sa.Column("results", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("poll", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_poll_session_id"), ["session_id"], unique=False)

    op.create_table(
        "question",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_question_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_question_session_id"), ["session_id"], unique=False)

    op.create_table(
        "room",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("pre_approval", sa.Boolean(), nullable=False),
        sa.Column("slow_mode_s", sa.Integer(), nullable=False),
        sa.Column("stage", sa.JSON(), nullable=False),
        sa.Column("muted", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("updated_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_table(
        "poll_vote",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.JSON(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["poll_id"], ["poll.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("poll_id", "person_id"),
    )
    with op.batch_alter_table("poll_vote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_poll_vote_person_id"), ["person_id"], unique=False)

    op.create_table(
        "question_vote",
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["question_id"], ["question.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("question_id", "person_id"),
    )
    with op.batch_alter_table("question_vote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_question_vote_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("question_vote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_question_vote_person_id"))

    op.drop_table("question_vote")
    with op.batch_alter_table("poll_vote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_poll_vote_person_id"))

    op.drop_table("poll_vote")
    op.drop_table("room")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_question_session_id"))
        batch_op.drop_index(batch_op.f("ix_question_person_id"))

    op.drop_table("question")
    with op.batch_alter_table("poll", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_poll_session_id"))

    op.drop_table("poll")
    with op.batch_alter_table("moderation_action", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_action_target_person_id"))
        batch_op.drop_index(batch_op.f("ix_moderation_action_session_id"))
        batch_op.drop_index(batch_op.f("ix_moderation_action_actor_id"))

    op.drop_table("moderation_action")
    with op.batch_alter_table("chat_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_message_session_id"))
        batch_op.drop_index(batch_op.f("ix_chat_message_person_id"))
        batch_op.drop_index(batch_op.f("ix_chat_message_deleted_by"))

    op.drop_table("chat_message")
    with op.batch_alter_table("attendance_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_visit_session_id"))
        batch_op.drop_index(batch_op.f("ix_attendance_visit_left_at"))
        batch_op.drop_index("ix_attendance_person_session")

    op.drop_table("attendance_visit")
