"""recently_moved beside self_selected in responses and the counters; polls.k frozen per poll;
result_releases: the last released results document of a poll and what the next must respect

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 19:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COUNTS_KEY = ["poll_id", "question_id", "option", "area_code", "age_band", "sex", "self_selected"]
RESPONDENTS_KEY = ["poll_id", "question_id", "area_code", "age_band", "sex", "self_selected"]


def upgrade() -> None:
    for table, key in (("counts", COUNTS_KEY), ("respondents", RESPONDENTS_KEY)):
        op.add_column(
            table,
            sa.Column("recently_moved", sa.Boolean(), server_default="false", nullable=False),
        )
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, [*key, "recently_moved"])
    op.add_column(
        "responses",
        sa.Column("recently_moved", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column("polls", sa.Column("k", sa.Integer(), nullable=True))
    op.create_table(
        "result_releases",
        sa.Column("poll_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("results_version", sa.BigInteger(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tables", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("hidden", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("poll_id"),
    )


def downgrade() -> None:
    op.drop_table("result_releases")
    op.drop_column("polls", "k")
    op.drop_column("responses", "recently_moved")
    for table, key in (("counts", COUNTS_KEY), ("respondents", RESPONDENTS_KEY)):
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, key)
        op.drop_column(table, "recently_moved")
