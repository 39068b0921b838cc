"""Development or not: a process refuses to start on development defaults unless it runs in
development mode.

Every config.yml reads ``ENVIRONMENT`` from ``BUURTPEIL_ENV`` (default ``production``).
``make run`` (deploy/local.py), Docker Compose's development setup and the tests set
``BUURTPEIL_ENV=development``. Anywhere else a service stops at start, naming each setting
that still holds a development default:

- a secret left at ``development-only-change-me`` (``UNSUBSCRIBE_SECRET``,
  ``RESPONDENT_KEY_SECRET``, ``REACTION_KEY_SECRET``, ``RECEIPT_SECRET``, ``WEB_SECRET``, …): a
  value anyone can read in this repository, with which unsubscribe links, receipt ids, CSRF
  tokens and pseudonymous keys can be forged or reversed;
- a key file in ``.keys/`` (``JWT_PRIVATE_KEY_FILE``, ``JWT_PUBLIC_KEY_FILE``,
  ``VAPID_PRIVATE_KEY_FILE``): the keys ``make run``'s seed makes on a developer's machine;
- ``PUSH_DEVELOPMENT_ORIGINS``: a local push service notify may send to over plain http;
- a secret that is not set at all (a ``Secret`` in the service's settings): in development
  mode it falls back to the development default, anywhere else it has none.

The check itself is part of building the settings (services/common/settings.py), so it runs
whichever provider of a container is set up first.
"""

from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider

from services.common.settings import (
    DEVELOPMENT,
    DEVELOPMENT_KEY_DIR,
    DEVELOPMENT_SECRET,
    build_settings,
    common_settings,
    development_defaults,
    is_development,
)

__all__ = [
    "DEVELOPMENT",
    "DEVELOPMENT_KEY_DIR",
    "DEVELOPMENT_SECRET",
    "DevelopmentDefaults",
    "development_defaults",
    "is_development",
    "refuse_development_defaults",
]


def refuse_development_defaults(config: dict[str, Any], service: str) -> None:
    """Raise ConfigError (one clear message) if a non-development process has any."""
    build_settings(config, service, lambda r: None)


class DevelopmentDefaults(DependencyProvider):
    """Checks the configuration when the container is set up, before any entrypoint starts:
    builds the common settings (services/common/settings.py), which refuses development
    defaults outside development."""

    def setup(self) -> None:
        common_settings(self.container)

    def get_dependency(self, worker_ctx: Any) -> None:
        return None
