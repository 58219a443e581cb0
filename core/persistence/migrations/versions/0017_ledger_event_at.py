"""the ledger by event and moment: a day's bookings of one kind in one range of an index

Revision ID: 0017_ledger_event_at
Revises: 0016_reconciliation
Create Date: 2026-11-30 23:40:00
"""

from alembic import op

revision = "0017_ledger_event_at"
down_revision = "0016_reconciliation"
branch_labels = None
depends_on = None

COLUMNS = ["event", "at", "account", "recovery_id", "amount_fen"]


def upgrade() -> None:
    op.create_index("ix_ledger_postings_event_at", "ledger_postings", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_ledger_postings_event_at", "ledger_postings")
