"""account erasure: a deleted account with recoveries to keep becomes a pseudonym

`users.deleted_at` is set when the person deleted their account but their recoveries (financial
records) must be kept; nobody can sign in as such a row.

Revision ID: 0007_account_erasure
Revises: 0006_consumer_journey
Create Date: 2026-11-30 15:30:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_account_erasure"
down_revision = "0006_consumer_journey"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
