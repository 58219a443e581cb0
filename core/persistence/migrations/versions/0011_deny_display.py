"""the deny list's display form: a masked number, or a shortened index, safe to show on the
console's deny-list page (the value itself is kept only as a blind index)

Revision ID: 0011_deny_display
Revises: 0010_console
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011_deny_display"
down_revision = "0010_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deny_list") as batch:
        batch.add_column(
            sa.Column("masked", sqlmodel.sql.sqltypes.AutoString(length=24), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("deny_list") as batch:
        batch.drop_column("masked")
