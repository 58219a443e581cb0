"""the anonymous log of quotes served (balance, carrier, priority, minute) for the pricing lab

Revision ID: 0021_quote_requests
Revises: 0020_partner_fees
Create Date: 2026-12-01 00:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0021_quote_requests"
down_revision = "0020_partner_fees"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "quote_requests",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", WHEN(), nullable=False),
        sa.Column("balance_fen", sa.Integer(), nullable=False),
        sa.Column("carrier", S(length=16), nullable=False),
        sa.Column("priority", S(length=8), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_quote_requests_at", "quote_requests", ["at"])


def downgrade() -> None:
    op.drop_index("ix_quote_requests_at", "quote_requests")
    op.drop_table("quote_requests")
