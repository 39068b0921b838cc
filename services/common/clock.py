"""The time a service acts on, as a nameko dependency: ``self.clock()`` → aware UTC datetime.

Tests that must see what happens "a month later" (feedback overdue, reminders) move the clock of
a running container instead of sleeping::

    Clock.of(container).advance(days=31)

Moving it is refused unless the container's config holds ``CLOCK_ADJUSTABLE: true``. No
service's config.yml names that key — on purpose: config.yml is the only place the environment
reaches a service (``${VAR:default}``), so no environment variable or deployment setting can
switch it on; only code that builds the config dict itself (the tests) can. The offset lives in
memory only, so a restart always returns to the real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from nameko.extensions import DependencyProvider

from services.common.settings import Reader, settings_of


def adjustable(r: Reader) -> bool:
    """``CLOCK_ADJUSTABLE``: only a YAML ``true`` or a test's True; a string from the
    environment is not enough (no config.yml sets it)."""
    return r.config.get("CLOCK_ADJUSTABLE") is True


class ClockNotAdjustable(RuntimeError):
    """advance() on a clock whose container was not configured for tests."""


class Clock(DependencyProvider):
    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.adjustable = False

    def setup(self) -> None:
        self.adjustable = settings_of(self.container, adjustable)
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> datetime:
        """Move this container's time forward (``days=31``, ``hours=2``…); tests only."""
        if not self.adjustable:
            raise ClockNotAdjustable("this clock is real time; CLOCK_ADJUSTABLE is not set")
        self.offset += timedelta(**delta)
        return self.now()

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.now

    @staticmethod
    def of(container: Any) -> Clock:
        """The Clock dependency of a running container."""
        return next(d for d in container.dependencies if isinstance(d, Clock))
