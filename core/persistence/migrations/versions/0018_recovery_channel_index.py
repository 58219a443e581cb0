"""a recovery's channel from an index alone: a day's bookings kept to one partner's without
reading each recovery's row

Revision ID: 0018_recovery_channel_index
Revises: 0017_ledger_event_at
Create Date: 2026-12-01 00:00:00
"""

from alembic import op

revision = "0018_recovery_channel_index"
down_revision = "0017_ledger_event_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recoveries_id_channel", "recoveries", ["id", "channel_id"])


def downgrade() -> None:
    op.drop_index("ix_recoveries_id_channel", "recoveries")
