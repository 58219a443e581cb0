"""the operations metrics of each day's ended recoveries, added up once and kept

Revision ID: 0015_metrics_days
Revises: 0014_metrics_indexes
Create Date: 2026-11-30 22:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015_metrics_days"
down_revision = "0014_metrics_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metrics_days",
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ended_parts", sa.Integer(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("metrics_days")
