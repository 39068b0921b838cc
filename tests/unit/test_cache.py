"""StaleTolerantCache: what notify and feedback keep of panel's municipal data."""

from __future__ import annotations

import pytest

from services.common import cache as cache_module
from services.common.cache import StaleTolerantCache


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(cache_module.time, "monotonic", fake)
    return fake


def failing():
    raise ConnectionError("panel is restarting")


def test_kept_for_ttl_then_fetched_again(clock):
    cache = StaleTolerantCache(ttl=60)
    assert cache.get("GM0344", lambda: {"k": 10}) == {"k": 10}
    clock.now += 59
    assert cache.get("GM0344", lambda: {"k": 15}) == {"k": 10}
    clock.now += 2
    assert cache.get("GM0344", lambda: {"k": 15}) == {"k": 15}


def test_the_last_value_while_the_owner_does_not_answer(clock):
    cache = StaleTolerantCache(ttl=60)
    cache.get("GM0344", lambda: {"k": 12})
    clock.now += 3600
    assert cache.get("GM0344", failing, fallback=lambda: {"k": 10}) == {"k": 12}


def test_the_fallback_or_the_error_when_there_is_no_last_value(clock):
    cache = StaleTolerantCache(ttl=60)
    assert cache.get("GM0344", failing, fallback=lambda: {"k": 10}) == {"k": 10}
    with pytest.raises(ConnectionError):
        cache.get("GM0307", failing)
