from alembic import context

from services.common.alembic_env import run_migrations
from services.feedback.models import target_metadata

run_migrations(context, target_metadata)
