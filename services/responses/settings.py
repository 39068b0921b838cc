"""responses' settings, read once at setup (services/common/settings.py); the defaults here are
the only ones in the code (config.yml maps each key to its environment variable)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.settings import Reader, Secret


@dataclass(frozen=True)
class ResponsesSettings:
    database_url: str
    # Keys responses by HMAC(secret, poll ‖ resident); changing it lets a resident answer a
    # running poll again.
    respondent_key_secret: Secret
    intake_batch_time_limit: float  # seconds per statement of an intake batch
    results_wait: float  # seconds a results read waits for a computation it needs
    results_cache_size: int  # polls whose results a process keeps
    results_refresh_in_background: bool

    @classmethod
    def load(cls, r: Reader) -> ResponsesSettings:
        return cls(
            database_url=r.text("DATABASE_URL"),
            respondent_key_secret=r.secret("RESPONDENT_KEY_SECRET"),
            intake_batch_time_limit=r.number("INTAKE_BATCH_TIME_LIMIT", 30),
            results_wait=r.number("RESULTS_WAIT", 8),
            results_cache_size=r.integer("RESULTS_CACHE_SIZE", 32),
            results_refresh_in_background=r.flag("RESULTS_REFRESH_IN_BACKGROUND", True),
        )
