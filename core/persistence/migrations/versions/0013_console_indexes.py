"""the console's searches: recoveries newest first, and the review queue oldest first

`ix_recoveries_head_created` serves "newest first" pages (WHERE part = 1 ORDER BY created_at
DESC, group_id DESC ... LIMIT n) as an index range scan that stops at the page's end;
`ix_recoveries_state_created` the queue (WHERE state = 'review' ORDER BY created_at LIMIT n);
the audit records of one recovery, or of one operator, are found by subject and by actor.

Revision ID: 0013_console_indexes
Revises: 0012_staff_admin
Create Date: 2026-11-30 19:20:00
"""

from alembic import op

revision = "0013_console_indexes"
down_revision = "0012_staff_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recoveries_head_created", "recoveries", ["part", "created_at", "group_id"])
    op.create_index("ix_recoveries_state_created", "recoveries", ["state", "created_at", "group_id"])
    op.create_index("ix_audit_records_subject", "audit_records", ["subject"])
    op.create_index("ix_audit_records_actor", "audit_records", ["actor"])


def downgrade() -> None:
    op.drop_index("ix_audit_records_actor", "audit_records")
    op.drop_index("ix_audit_records_subject", "audit_records")
    op.drop_index("ix_recoveries_state_created", "recoveries")
    op.drop_index("ix_recoveries_head_created", "recoveries")
