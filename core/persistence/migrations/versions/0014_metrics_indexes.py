"""the operations metrics: a period's recoveries and their transitions read from indexes

`ix_recoveries_period` holds every column the metrics read of a transaction, in (created_at,
group_id) order: a period is one range of it, grouped by recovery without sorting.
`ix_recovery_transitions_part_event` gives one transaction's moments (debit started, debit
confirmed, payout confirmed) in one look-up; `ix_recovery_transitions_event_at` one event over a
period (the recoveries sent to review).

Revision ID: 0014_metrics_indexes
Revises: 0013_console_indexes
Create Date: 2026-11-30 20:00:00
"""

from alembic import op

revision = "0014_metrics_indexes"
down_revision = "0013_console_indexes"
branch_labels = None
depends_on = None

PERIOD = ["created_at", "group_id", "id", "state", "channel_id", "carrier", "debit_fen", "fee_fen"]


def upgrade() -> None:
    op.create_index("ix_recoveries_period", "recoveries", PERIOD)
    op.create_index("ix_recovery_transitions_part_event", "recovery_transitions", ["recovery_id", "event", "at"])
    op.create_index("ix_recovery_transitions_event_at", "recovery_transitions", ["event", "at", "recovery_id"])


def downgrade() -> None:
    op.drop_index("ix_recovery_transitions_event_at", "recovery_transitions")
    op.drop_index("ix_recovery_transitions_part_event", "recovery_transitions")
    op.drop_index("ix_recoveries_period", "recoveries")
