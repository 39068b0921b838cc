"""A nameko timer whose interval comes from the service config, so tests and operators can
tune schedules without code changes."""

from __future__ import annotations

from nameko.timer import Timer


class ConfigTimer(Timer):
    def __init__(self, config_key: str, default: float, **kwargs: object):
        self.config_key = config_key
        self.default = default
        super().__init__(interval=default, **kwargs)

    def setup(self) -> None:
        self.interval = float(self.container.config.get(self.config_key, self.default))
        super().setup()


timer = ConfigTimer.decorator
