"""paper questionnaires: print runs and their codes (branch paper, issue 14)

Revision ID: 0005_paper
Revises: 0004_kinds
Create Date: 2026-12-06 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_paper"
down_revision = "0004_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("wijk_code", sa.String(length=8), nullable=False),
        sa.Column("buurt_code", sa.String(length=10), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("paper_runs_by_poll", "paper_runs", ["municipality_code", "poll_id"])
    op.create_table(
        "paper_codes",
        sa.Column("code", sa.String(length=14), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("keyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("keyed_by", sa.String(length=320), nullable=True),
        sa.Column("receipt_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["paper_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("paper_codes_by_run", "paper_codes", ["run_id", "position"])


def downgrade() -> None:
    op.drop_index("paper_codes_by_run", table_name="paper_codes")
    op.drop_table("paper_codes")
    op.drop_index("paper_runs_by_poll", table_name="paper_runs")
    op.drop_table("paper_runs")
