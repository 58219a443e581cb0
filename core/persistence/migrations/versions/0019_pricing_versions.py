"""pricing versions: the portal's own offer and the routes' cost schedules, versioned and
published with a second person's approval

Revision ID: 0019_pricing_versions
Revises: 0018_recovery_channel_index
Create Date: 2026-12-01 00:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0019_pricing_versions"
down_revision = "0018_recovery_channel_index"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "pricing_versions",
        sa.Column("id", S(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", S(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("note", S(length=500), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("author_id", S(length=36), nullable=True),
        sa.Column("created_at", WHEN(), nullable=False),
        sa.Column("submitted_at", WHEN(), nullable=True),
        sa.Column("decided_by", S(length=36), nullable=True),
        sa.Column("decided_at", WHEN(), nullable=True),
        sa.Column("decision_note", S(length=500), nullable=False),
        sa.Column("live_slot", S(length=8), nullable=True),
        sa.Column("pending_slot", S(length=12), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("live_slot"),
        sa.UniqueConstraint("pending_slot"),
    )
    op.create_index("ix_pricing_versions_status", "pricing_versions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_pricing_versions_status", "pricing_versions")
    op.drop_table("pricing_versions")
