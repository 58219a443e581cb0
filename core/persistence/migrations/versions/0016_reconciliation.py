"""reconciliation: partners' statements imported once, their rows, and the breaks found

Revision ID: 0016_reconciliation
Revises: 0015_metrics_days
Create Date: 2026-11-30 23:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016_reconciliation"
down_revision = "0015_metrics_days"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "statement_imports",
        sa.Column("id", S(length=36), nullable=False),
        sa.Column("sha256", S(length=64), nullable=False),
        sa.Column("partner", S(length=32), nullable=False),
        sa.Column("business_day", S(length=10), nullable=False),
        sa.Column("dialect", S(length=32), nullable=False),
        sa.Column("filename", S(length=200), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("ours_fen", sa.Integer(), nullable=False),
        sa.Column("theirs_fen", sa.Integer(), nullable=False),
        sa.Column("summary_count", sa.Integer(), nullable=False),
        sa.Column("summary_amount_fen", sa.Integer(), nullable=False),
        sa.Column("summary_fee_fen", sa.Integer(), nullable=False),
        sa.Column("imported_by", S(length=36), nullable=False),
        sa.Column("imported_at", WHEN(), nullable=False),
        sa.ForeignKeyConstraint(["imported_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_index("ix_statement_imports_partner", "statement_imports", ["partner"])
    op.create_index("ix_statement_imports_business_day", "statement_imports", ["business_day"])
    op.create_table(
        "statement_lines",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("import_id", S(length=36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("partner", S(length=32), nullable=False),
        sa.Column("business_day", S(length=10), nullable=False),
        sa.Column("at", WHEN(), nullable=False),
        sa.Column("partner_ref", S(length=64), nullable=False),
        sa.Column("reference", S(length=100), nullable=False),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("status", S(length=16), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("fee_fen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["statement_imports.id"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_statement_lines_import_id", "statement_lines", ["import_id"])
    op.create_index("ix_statement_lines_partner_reference", "statement_lines", ["partner", "reference"])
    op.create_table(
        "reconciliation_breaks",
        sa.Column("id", S(length=36), nullable=False),
        sa.Column("import_id", S(length=36), nullable=False),
        sa.Column("partner", S(length=32), nullable=False),
        sa.Column("business_day", S(length=10), nullable=False),
        sa.Column("kind", S(length=24), nullable=False),
        sa.Column("reference", S(length=100), nullable=False),
        sa.Column("recovery_id", S(length=36), nullable=True),
        sa.Column("ours_fen", sa.Integer(), nullable=True),
        sa.Column("theirs_fen", sa.Integer(), nullable=True),
        sa.Column("our_day", S(length=10), nullable=True),
        sa.Column("their_day", S(length=10), nullable=True),
        sa.Column("status", S(length=12), nullable=False),
        sa.Column("resolution", S(length=24), nullable=False),
        sa.Column("note", S(length=200), nullable=False),
        sa.Column("resolved_by", S(length=36), nullable=True),
        sa.Column("resolved_at", WHEN(), nullable=True),
        sa.ForeignKeyConstraint(["import_id"], ["statement_imports.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("import_id", "partner", "reference", "status"):
        op.create_index(f"ix_reconciliation_breaks_{column}", "reconciliation_breaks", [column])


def downgrade() -> None:
    for column in ("status", "reference", "partner", "import_id"):
        op.drop_index(f"ix_reconciliation_breaks_{column}", "reconciliation_breaks")
    op.drop_table("reconciliation_breaks")
    op.drop_index("ix_statement_lines_partner_reference", "statement_lines")
    op.drop_index("ix_statement_lines_import_id", "statement_lines")
    op.drop_table("statement_lines")
    op.drop_index("ix_statement_imports_business_day", "statement_imports")
    op.drop_index("ix_statement_imports_partner", "statement_imports")
    op.drop_table("statement_imports")
