"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 09:18:10.164053
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.storage.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forum",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("theme", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("forum", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forum_slug"), ["slug"], unique=True)

    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("organisation", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("country", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("region", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("country_consent_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("gender", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("gender_consent_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stakeholder_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("stakeholder_consent_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("high_level", sa.Boolean(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("is_organizer", sa.Boolean(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_person_email"), ["email"], unique=True)

    op.create_table(
        "session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("forum_id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=10000), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("starts_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("track", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["forum_id"], ["forum.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("forum_id", "code", name="uq_session_forum_code"),
    )
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_forum_id"), ["forum_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_starts_at"), ["starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_track"), ["track"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_type"), ["type"], unique=False)

    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_by", sa.Integer(), nullable=True),
        sa.Column("accepted_at", server.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["accepted_by"], ["person.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitation_accepted_by"), ["accepted_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitation_created_by"), ["created_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitation_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitation_token_hash"), ["token_hash"], unique=True)

    op.create_table(
        "registration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "session_id", name="uq_registration"),
    )
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registration_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_registration_session_id"), ["session_id"], unique=False)

    op.create_table(
        "session_action_line",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("action_line", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "action_line"),
    )
    op.create_table(
        "session_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", server.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "person_id", "role", name="uq_session_role"),
    )
    with op.batch_alter_table("session_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_role_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_role_session_id"), ["session_id"], unique=False)

    op.create_table(
        "session_sdg",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("sdg", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "sdg"),
    )
    op.create_table(
        "session_tag",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["session.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "tag"),
    )


def downgrade() -> None:
    op.drop_table("session_tag")
    op.drop_table("session_sdg")
    with op.batch_alter_table("session_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_role_session_id"))
        batch_op.drop_index(batch_op.f("ix_session_role_person_id"))

    op.drop_table("session_role")
    op.drop_table("session_action_line")
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_session_id"))
        batch_op.drop_index(batch_op.f("ix_registration_person_id"))

    op.drop_table("registration")
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_token_hash"))
        batch_op.drop_index(batch_op.f("ix_invitation_session_id"))
        batch_op.drop_index(batch_op.f("ix_invitation_created_by"))
        batch_op.drop_index(batch_op.f("ix_invitation_accepted_by"))

    op.drop_table("invitation")
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_type"))
        batch_op.drop_index(batch_op.f("ix_session_track"))
        batch_op.drop_index(batch_op.f("ix_session_status"))
        batch_op.drop_index(batch_op.f("ix_session_starts_at"))
        batch_op.drop_index(batch_op.f("ix_session_forum_id"))

    op.drop_table("session")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_email"))

    op.drop_table("person")
    with op.batch_alter_table("forum", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forum_slug"))

    op.drop_table("forum")
