"""the workers' claim served by one index: due messages that are not done, oldest first (it
replaces the index on done_at alone)

Revision ID: 0022_outbox_due_index
Revises: 0021_quote_requests
Create Date: 2026-12-01 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_outbox_due_index"
down_revision = "0021_quote_requests"
branch_labels = None
depends_on = None

NOT_DONE = sa.text("done_at IS NULL")


def upgrade() -> None:
    # partial: only open messages are in it, so it stays small however long the outbox grows
    op.create_index(
        "ix_outbox_due", "outbox", ["available_at", "seq"], postgresql_where=NOT_DONE, sqlite_where=NOT_DONE
    )
    # every reader of open messages is served by the new index; SQLite's planner took this one
    # for `done_at IS NULL` and then sorted every open message for the claim's ORDER BY
    op.drop_index("ix_outbox_done_at", "outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_done_at", "outbox", ["done_at"])
    op.drop_index("ix_outbox_due", "outbox")
