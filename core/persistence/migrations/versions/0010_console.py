"""the operator console: claims on review cases, requests waiting for a second person, and
the carrier of each recovery's number (searched and counted by the console)

Revision ID: 0010_console
Revises: 0009_sign_in_tables
Create Date: 2026-11-30 19:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010_console"
down_revision = "0009_sign_in_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recoveries") as batch:
        batch.add_column(
            sa.Column("carrier", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="", nullable=False)
        )
    op.create_table(
        "review_claims",
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("holder_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("holder_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["holder_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "approval_requests",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("pending_key", sqlmodel.sql.sqltypes.AutoString(length=110), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pending_key"),
    )
    op.create_index("ix_approval_requests_subject", "approval_requests", ["subject"])
    op.create_index("ix_approval_requests_status", "approval_requests", ["status"])


def downgrade() -> None:
    op.drop_index("ix_approval_requests_status", "approval_requests")
    op.drop_index("ix_approval_requests_subject", "approval_requests")
    op.drop_table("approval_requests")
    op.drop_table("review_claims")
    with op.batch_alter_table("recoveries") as batch:
        batch.drop_column("carrier")
