"""sign-in tables of their own: TOTP steps used and known sign-in addresses

Both used to be rows in `throttles` under the keys `totp-step:<user id>` (the step in
`failures`) and `known:<account>:<client>`; they move to tables that say what they hold.

Revision ID: 0009_sign_in_tables
Revises: 0008_process_leases
Create Date: 2026-11-30 16:20:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009_sign_in_tables"
down_revision = "0008_process_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "totp_steps",
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "known_sign_in_addresses",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("first_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.execute(
        "INSERT INTO totp_steps (user_id, step, used_at) "
        "SELECT substr(t.key, 11), t.failures, t.window_started_at FROM throttles t "
        "WHERE t.key LIKE 'totp-step:%' AND substr(t.key, 11) IN (SELECT id FROM users)"
    )
    op.execute(
        "INSERT INTO known_sign_in_addresses (key, first_seen_at, last_seen_at) "
        "SELECT substr(key, 7), window_started_at, window_started_at FROM throttles WHERE key LIKE 'known:%'"
    )
    op.execute("DELETE FROM throttles WHERE key LIKE 'totp-step:%' OR key LIKE 'known:%'")


def downgrade() -> None:
    op.execute(
        "INSERT INTO throttles (key, failures, window_started_at) "
        "SELECT 'totp-step:' || user_id, step, used_at FROM totp_steps"
    )
    op.execute(
        "INSERT INTO throttles (key, failures, window_started_at) "
        "SELECT 'known:' || key, 0, first_seen_at FROM known_sign_in_addresses"
    )
    op.drop_table("known_sign_in_addresses")
    op.drop_table("totp_steps")
