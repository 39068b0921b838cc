"""a session names its contact: one contact of a business or organisation can leave alone

Sessions made before this migration are matched to their contact where that is certain
enough: an organisation with one contact, or the contact who joined at the moment the
session began (a session only begins when a contact joins; later tokens rotate within it).
A session that matches no contact keeps contact_id NULL; leaving from it is refused while
the organisation has other contacts (docs/api.md, DELETE /api/v1/me).

Revision ID: 0006_contact_sessions
Revises: 0005_paper
Create Date: 2026-12-06 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_contact_sessions"
down_revision = "0005_paper"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("contact_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "refresh_tokens_contact_id_fkey",
        "refresh_tokens",
        "contacts",
        ["contact_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index("ix_refresh_tokens_contact_id", "refresh_tokens", ["contact_id"])
    op.execute(
        """
        WITH began AS (
            SELECT family_id, resident_id, min(issued_at) AS at
            FROM refresh_tokens GROUP BY family_id, resident_id
        ), matched AS (
            SELECT DISTINCT ON (b.family_id) b.family_id, c.id AS contact_id
            FROM began b
            JOIN contacts c ON c.resident_id = b.resident_id
            WHERE (SELECT count(*) FROM contacts o WHERE o.resident_id = b.resident_id) = 1
               OR c.created_at BETWEEN b.at - interval '1 minute' AND b.at
            ORDER BY b.family_id, c.created_at DESC
        )
        UPDATE refresh_tokens t SET contact_id = m.contact_id
        FROM matched m WHERE t.family_id = m.family_id
        """
    )


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_contact_id", "refresh_tokens")
    op.drop_constraint("refresh_tokens_contact_id_fkey", "refresh_tokens")
    op.drop_column("refresh_tokens", "contact_id")
