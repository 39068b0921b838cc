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
- ``PUSH_DEVELOPMENT_ORIGINS``: a local push service notify may send to over plain http.
"""

from __future__ import annotations

import logging
from typing import Any

from nameko.extensions import DependencyProvider

from services.common.config import ConfigError

log = logging.getLogger(__name__)

DEVELOPMENT = "development"
DEVELOPMENT_SECRET = "development-only-change-me"  # noqa: S105 - the value to refuse
DEVELOPMENT_KEY_DIR = ".keys/"


def is_development(config: dict[str, Any]) -> bool:
    return str(config.get("ENVIRONMENT", "production")).strip().lower() == DEVELOPMENT


def development_defaults(config: dict[str, Any]) -> list[str]:
    """What in ``config`` is a development default, one phrase per setting."""
    found = []
    for key, value in sorted(config.items()):
        if not isinstance(value, str):
            continue
        if value == DEVELOPMENT_SECRET:
            found.append(f"{key} is the development default {DEVELOPMENT_SECRET!r}")
        elif key.endswith("_KEY_FILE") and any(
            path.strip().removeprefix("./").startswith(DEVELOPMENT_KEY_DIR)
            for path in value.split(",")
        ):
            found.append(f"{key} is a development key in {DEVELOPMENT_KEY_DIR} ({value})")
        elif key == "PUSH_DEVELOPMENT_ORIGINS" and value.strip():
            found.append(f"{key} is set ({value}): a local push service, for development only")
    return found


def refuse_development_defaults(config: dict[str, Any], service: str) -> None:
    """Raise ConfigError (one clear message) if a non-development process has any."""
    if is_development(config):
        return
    found = development_defaults(config)
    if found:
        raise ConfigError(
            f"{service} refuses to start with development defaults outside development "
            f"(BUURTPEIL_ENV={config.get('ENVIRONMENT', 'production')}): "
            + "; ".join(found)
            + ". Set real values (docs/deployment.md, Keys and secrets), or "
            "BUURTPEIL_ENV=development on a developer's machine."
        )


class DevelopmentDefaults(DependencyProvider):
    """Checks the configuration when the container is set up, before any entrypoint starts."""

    def setup(self) -> None:
        try:
            refuse_development_defaults(self.container.config, self.container.service_name)
        except ConfigError as exc:
            log.critical("%s", exc)
            raise

    def get_dependency(self, worker_ctx: Any) -> None:
        return None
