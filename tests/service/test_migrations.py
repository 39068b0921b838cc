"""Each service's migrations build exactly the schema its models describe."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.common import migrate
from services.common.migrate import SERVICES_WITH_DATABASE

HOUR = timedelta(hours=1)


@pytest.mark.parametrize("service", SERVICES_WITH_DATABASE)
def test_migrated_schema_matches_the_models(service, engines):
    models = importlib.import_module(f"services.{service}.models")
    with engines[service].connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, models.target_metadata)
    assert differences == []


def test_sessions_made_before_contacts_were_told_apart_are_matched_to_their_contact(databases):
    """panel's 0006: an organisation with one contact gets it on every session; with more, a
    session gets the contact who joined when it began (its first token), through every token
    it rotated to; a session that began at no contact's joining keeps none."""
    from alembic import command
    from sqlalchemy.engine import make_url

    url = str(
        make_url(databases["panel"]).set(database=f"{make_url(databases['panel']).database}_m")
    )
    migrate.create_database(url)
    engine = sa.create_engine(url)
    try:
        command.upgrade(migrate.alembic_config("panel", url), "0005_paper")
        t0 = datetime(2026, 11, 1, 9, tzinfo=UTC)
        alone, pair = uuid.uuid4(), uuid.uuid4()
        only, c1, c2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        tokens = [  # (family, organisation, issued at)
            ("solo", alone, t0 + timedelta(days=3)),  # rotated long after: tokens were kept
            ("f1", pair, t0 + timedelta(milliseconds=5)),
            ("f1", pair, t0 + timedelta(days=2)),
            ("f2", pair, t0 + timedelta(hours=1, milliseconds=5)),
            ("f3", pair, t0 + timedelta(hours=3)),
        ]
        families = {name: uuid.uuid4() for name in ("solo", "f1", "f2", "f3")}
        with engine.begin() as conn:
            for rid, kvk in ((alone, "90000001"), (pair, "90000002")):
                conn.execute(
                    sa.text(
                        "INSERT INTO residents (id, municipality_code, kind, kvk_number, "
                        "buurt_code, wijk_code, language, consent_version, consent_at, "
                        "self_selected, joined_at, updated_at) VALUES (:id, 'GM0344', "
                        "'ondernemer', :kvk, 'BU03440613', 'WK034406', 'nl', 'x', :t, false, "
                        ":t, :t)"
                    ),
                    {"id": rid, "kvk": kvk, "t": t0},
                )
            for cid, rid, at in ((only, alone, t0), (c1, pair, t0), (c2, pair, t0 + HOUR)):
                conn.execute(
                    sa.text("INSERT INTO contacts VALUES (:id, :r, NULL, :t)"),
                    {"id": cid, "r": rid, "t": at},
                )
            for n, (family, rid, at) in enumerate(tokens):
                conn.execute(
                    sa.text(
                        "INSERT INTO refresh_tokens (token_hash, family_id, resident_id, "
                        "issued_at, expires_at) VALUES (:h, :f, :r, :t, :t)"
                    ),
                    {"h": f"{n:064d}", "f": families[family], "r": rid, "t": at},
                )
        command.upgrade(migrate.alembic_config("panel", url), "head")
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT family_id, contact_id FROM refresh_tokens ORDER BY token_hash")
            ).all()
        assert [(f, c) for f, c in found] == [
            (families["solo"], only),
            (families["f1"], c1),
            (families["f1"], c1),
            (families["f2"], c2),
            (families["f3"], None),
        ]
    finally:
        engine.dispose()
        migrate.drop_database(url)
