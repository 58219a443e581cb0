"""process leases: one process at a time runs the in-process sandbox partners on a database

Revision ID: 0008_process_leases
Revises: 0007_account_erasure
Create Date: 2026-11-30 15:35:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008_process_leases"
down_revision = "0007_account_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_leases",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("renewed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("process_leases")
