"""A nameko timer whose interval comes from the service config, so tests and operators can
tune schedules without code changes."""

from __future__ import annotations

from nameko.timer import Timer

from services.common.settings import read_number


class ConfigTimer(Timer):
    def __init__(self, config_key: str, default: float, **kwargs: object):
        self.config_key = config_key
        self.default = default
        super().__init__(interval=default, **kwargs)

    def setup(self) -> None:
        self.interval = read_number(self.container, self.config_key, self.default)
        super().setup()


timer = ConfigTimer.decorator
