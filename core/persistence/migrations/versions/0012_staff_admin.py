"""staff administration: disabled accounts, and the one-time links new staff set their
password with (only the token's hash is kept)

Revision ID: 0012_staff_admin
Revises: 0011_deny_display
Create Date: 2026-12-01 10:30:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012_staff_admin"
down_revision = "0011_deny_display"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_table(
        "staff_setup_tokens",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_staff_setup_tokens_user_id", "staff_setup_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_setup_tokens_user_id", "staff_setup_tokens")
    op.drop_table("staff_setup_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
