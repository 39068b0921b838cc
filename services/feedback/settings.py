"""feedback's settings, read once at setup (services/common/settings.py); the defaults here are
the only ones in the code (config.yml maps each key to its environment variable)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.settings import Reader, Secret


@dataclass(frozen=True)
class FeedbackSettings:
    # Keys reactions by HMAC(secret, resident id); changing it orphans existing reactions.
    reaction_key_secret: Secret
    admin_app_url: str  # linked from the overdue reminder
    panel_cache_seconds: float  # municipal settings from panel are kept this long

    @classmethod
    def load(cls, r: Reader) -> FeedbackSettings:
        return cls(
            reaction_key_secret=r.secret("REACTION_KEY_SECRET"),
            admin_app_url=r.text("ADMIN_APP_URL"),
            panel_cache_seconds=r.number("PANEL_CACHE_SECONDS", 60),
        )
