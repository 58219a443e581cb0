"""the audit chain off the critical path: a record is written unchained (no hashes yet) and
chained afterwards, in batches, by one chainer, each record at its own place in the chain

Revision ID: 0023_audit_chainer
Revises: 0022_outbox_due_index
Create Date: 2026-12-01 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_audit_chainer"
down_revision = "0022_outbox_due_index"
branch_labels = None
depends_on = None

UNCHAINED = sa.text("hash IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as table:
        table.alter_column("previous_hash", existing_type=sa.String(64), nullable=True)
        table.alter_column("hash", existing_type=sa.String(64), nullable=True)
        table.add_column(sa.Column("chain_seq", sa.Integer(), nullable=True))
    # every record so far was chained as it was written, in the order of its sequence number
    op.execute("UPDATE audit_records SET chain_seq = seq")
    op.create_index("ix_audit_records_chain_seq", "audit_records", ["chain_seq"], unique=True)
    # the chainer's look-up: only records waiting to be chained are in it, so it stays small
    op.create_index("ix_audit_unchained", "audit_records", ["seq"], postgresql_where=UNCHAINED, sqlite_where=UNCHAINED)


def downgrade() -> None:
    op.drop_index("ix_audit_unchained", "audit_records")
    op.drop_index("ix_audit_records_chain_seq", "audit_records")
    with op.batch_alter_table("audit_records") as table:
        table.drop_column("chain_seq")
        table.alter_column("hash", existing_type=sa.String(64), nullable=False)
        table.alter_column("previous_hash", existing_type=sa.String(64), nullable=False)
