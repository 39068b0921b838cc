"""What the responses fault tests share: polls, panel and the gateway in this process (they are
not what is being hurt), responses in processes of their own (so they can be killed for real,
or pointed at a proxy), and a listener for response_recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import wait_for
from tests.support.gateway import Api, free_port, serving_submissions
from tests.support.listeners import recorder
from tests.support.responses import ResponsesProcesses, log_tail


@pytest.fixture
def front(
    container_factory: Any, service_config: Callable[..., dict[str, Any]], jwt_keys: dict[str, Any]
) -> Api:
    """polls, panel and the gateway running in this process; an HTTP client for the gateway."""
    from gateway.service import GatewayService
    from services.panel.service import PanelService
    from services.polls.service import PollsService

    container_factory(PollsService, service_config("polls", OUTBOX_POLL_INTERVAL=0.1)).start()
    container_factory(PanelService, service_config("panel", OUTBOX_POLL_INTERVAL=0.1)).start()
    port = free_port()
    container_factory(
        GatewayService,
        service_config("gateway", WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", RPC_TIMEOUT=10),
    ).start()
    client = Api(f"http://127.0.0.1:{port}", jwt_keys["private_key"], requests.Session())
    wait_for(lambda: serving_submissions(client), timeout=30, message="the gateway serving")
    return client


@pytest.fixture
def recorded_events(container_factory: Any, amqp_uri: str) -> list[Any]:
    """Every response_recorded published (duplicates included), as a consumer receives them."""
    service, received = recorder("responses", "response_recorded", name="recorded_events")
    container_factory(service, {"AMQP_URI": amqp_uri, "RETRY_DELAYS": [0.1]}).start()
    return received


@pytest.fixture
def responses_process(
    amqp_uri: str, databases: dict[str, str], tmp_path: Path
) -> Iterator[ResponsesProcesses]:
    """``responses_process.start(**env)`` runs responses in a new OS process (so it can be
    killed for real); whatever still runs is stopped at the end."""
    processes = ResponsesProcesses(
        amqp_uri,
        {
            "AMQP_URI": amqp_uri,
            "RESPONSES_DATABASE_URL": databases["responses"],
            "RESPONSES_METRICS_PORT": "0",
        },
        tmp_path / "responses.log",
    )
    yield processes
    processes.stop_all()
    # Shown with the report when the test failed (pytest keeps captured output otherwise).
    print(f"--- {processes.log} (end) ---\n{log_tail(processes.log)}")
