"""the payout partner's own fee of each recovery transaction, booked apart from our margin

Revision ID: 0020_partner_fees
Revises: 0019_pricing_versions
Create Date: 2026-12-01 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_partner_fees"
down_revision = "0019_pricing_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recoveries") as batch:
        batch.add_column(sa.Column("partner_fee_fen", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("recoveries") as batch:
        batch.drop_column("partner_fee_fen")
