"""Browser tests: Debian's Chromium driven by Playwright (pytest-playwright), against the
whole system started as subprocesses (tests/browser/system.py). They run in a pytest process
of their own without eventlet (``make test-browser``, called by ``make test``)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.system import System, start_system
from tests.support import infra

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

if os.environ.get("BUURTPEIL_NO_EVENTLET") != "1":  # pragma: no cover - a wrong invocation
    raise RuntimeError("run the browser tests with `make test-browser` (no eventlet patching)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason="chromium is not installed: apt-get install -y chromium")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="session")
def system(databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    if not infra.port_open(infra.AMQP_HOST):
        pytest.fail(f"RabbitMQ does not answer on {infra.AMQP_HOST}")
    vhost = f"bp_browser_{uuid.uuid4().hex[:8]}"
    amqp_uri = infra.create_vhost(vhost)
    running = start_system(databases, amqp_uri, tmp_path_factory.mktemp("system"))
    try:
        yield running
    finally:
        running.stop()
        running.push.stop()
        running.smtp.stop()
        infra.delete_vhost(vhost)


@pytest.fixture(scope="session")
def browser_context_args(system: System) -> dict[str, Any]:
    return {"base_url": system.base, "locale": "nl-NL", "viewport": {"width": 390, "height": 844}}
