"""The kind of participant (resident, ondernemer, organisatie) and the channel of each answer
(app, link, paper) in responses and the counters, for results per kind and per channel (issue
14); open answers keep the kind. Rows from before are residents who answered in the app.

Revision ID: 0006_breakdowns
Revises: 0005_series_feat_overview
Create Date: 2026-12-06 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_breakdowns"
down_revision = "0005_series_feat_overview"
branch_labels = None
depends_on = None

COUNTS_KEY = [
    "poll_id",
    "question_id",
    "option",
    "area_code",
    "age_band",
    "sex",
    "self_selected",
    "recently_moved",
]
RESPONDENTS_KEY = [
    "poll_id",
    "question_id",
    "area_code",
    "age_band",
    "sex",
    "self_selected",
    "recently_moved",
]
NEW = (("kind", "resident", 12), ("channel", "app", 8))


def upgrade() -> None:
    for name, default, size in NEW:
        op.add_column(
            "responses", sa.Column(name, sa.String(size), server_default=default, nullable=False)
        )
    op.add_column(
        "open_texts", sa.Column("kind", sa.String(12), server_default="resident", nullable=False)
    )
    for table, key in (("counts", COUNTS_KEY), ("respondents", RESPONDENTS_KEY)):
        for name, default, size in NEW:
            op.add_column(
                table, sa.Column(name, sa.String(size), server_default=default, nullable=False)
            )
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, [*key, "kind", "channel"])


def downgrade() -> None:
    # Going back folds every kind and channel into the old counters (summed), as they would
    # have been counted before.
    for table, key in (("counts", COUNTS_KEY), ("respondents", RESPONDENTS_KEY)):
        cols = ", ".join(key)
        op.execute(
            f"CREATE TEMPORARY TABLE folded AS SELECT {cols}, sum(n)::int AS n "
            f"FROM {table} GROUP BY {cols}"
        )
        op.execute(f"DELETE FROM {table}")
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        for name, _, _ in NEW:
            op.drop_column(table, name)
        op.execute(f"INSERT INTO {table} ({cols}, n) SELECT {cols}, n FROM folded")
        op.execute("DROP TABLE folded")
        op.create_primary_key(f"{table}_pkey", table, key)
    op.drop_column("open_texts", "kind")
    for name, _, _ in NEW:
        op.drop_column("responses", name)
