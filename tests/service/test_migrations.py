"""Each service's migrations build exactly the schema its models describe."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.common.migrate import SERVICES_WITH_DATABASE


@pytest.mark.parametrize("service", SERVICES_WITH_DATABASE)
def test_migrated_schema_matches_the_models(service, engines):
    models = importlib.import_module(f"services.{service}.models")
    with engines[service].connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, models.target_metadata)
    assert differences == []
