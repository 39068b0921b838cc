"""Fixtures shared by every test.

When to use what (after nameko-examples' interface tests):
- unit/ tests call plain functions and need neither broker nor database;
- service/ tests run real nameko containers against the real RabbitMQ and PostgreSQL of this
  machine: a database per service made fresh for the run (truncated between tests), and a
  fresh vhost per test so no queue or message leaks from one test into the next;
- only systems outside Buurtpeil (push services, FCM, mail servers) are faked, in fakes/,
  and the fakes speak the real protocols.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.common import migrate  # noqa: E402
from services.common.config import load_service_config  # noqa: E402
from tests.support import infra  # noqa: E402

RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
# Redis is shared with colleagues' runs: every key this run makes starts with REDIS_PREFIX
# (each test adds a part of its own); processes the tests start inherit it.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_PREFIX = f"bp_test_{RUN_ID}"
os.environ["REDIS_URL"] = REDIS_URL
os.environ["REDIS_KEY_PREFIX"] = REDIS_PREFIX
# The tests run on development defaults (services/common/environment.py refuses them in any
# other mode), and push to the fake push service on a port of its choosing.
os.environ["BUURTPEIL_ENV"] = "development"
os.environ["PUSH_DEVELOPMENT_ORIGINS"] = "http://127.0.0.1:*"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault suite's one line per fault (tests/support/faults.py), also when captured."""
    from tests.support.faults import FAULT_LINES

    if LEAKED_LISTENERS:
        terminalreporter.section("greenthreads left waiting on closed descriptors")
        for line in LEAKED_LISTENERS:
            terminalreporter.write_line(line)
    if FAULT_LINES:
        terminalreporter.section("faults")
        for line in FAULT_LINES:
            terminalreporter.write_line(line)


# Tests after which a greenthread was found waiting on a file descriptor that is closed, or
# that is something else by now (see the hook below): printed at the end of the run.
LEAKED_LISTENERS: list[str] = []
_LISTENED: dict[int, tuple[int, tuple[int, int] | None]] = {}  # id(listener) → (fd, identity)


def _identity(fileno: int) -> tuple[int, int] | None:
    try:
        stat = os.fstat(fileno)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _stale_listeners() -> list[int]:
    """eventlet hub listeners whose file descriptor was closed (and perhaps reused) under
    them. epoll forgets a closed descriptor, so such a greenthread never wakes, and the hub
    keeps the number: the next non-green user of that number (``subprocess``'s pipes) fails
    with "Second simultaneous read on fileno N" — which turned 33 tests of one CI run into
    errors."""
    if "eventlet" not in sys.modules:
        return []
    from eventlet import hubs

    hub = hubs.get_hub()
    stale, seen = set(), {}
    for bucket in (*hub.listeners.values(), *hub.secondaries.values()):
        for fileno, listeners in list(bucket.items()):
            for listener in listeners if isinstance(listeners, list) else [listeners]:
                identity = _identity(fileno)
                first = _LISTENED.get(id(listener), (fileno, identity))
                seen[id(listener)] = first
                if identity is None or first != (fileno, identity):
                    stale.add(fileno)
    _LISTENED.clear()
    _LISTENED.update(seen)
    return sorted(stale)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield
    stale = _stale_listeners()
    if stale:
        from eventlet import hubs

        # Wake them (their descriptor is gone) so the number is free for whoever has it now.
        for fileno in stale:
            hubs.get_hub().mark_as_reopened(fileno)
        LEAKED_LISTENERS.append(f"{item.nodeid}: descriptors {stale}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if (
            "/service/" in str(item.fspath)
            or "/reliability/" in str(item.fspath)
            or "/e2e/" in str(item.fspath)
        ):
            item.add_marker(pytest.mark.service)


@pytest.fixture(scope="session")
def databases() -> Iterator[dict[str, str]]:
    """service name → URL of a database made (and migrated) for this test run."""
    if not infra.port_open("127.0.0.1:5432"):
        pytest.fail("PostgreSQL does not answer on 127.0.0.1:5432 (see README: Requirements)")
    urls = {
        service: f"{infra.PG_BASE}/bp_test_{RUN_ID}_{service}"
        for service in migrate.SERVICES_WITH_DATABASE
    }
    try:
        for service, url in urls.items():
            migrate.upgrade(service, url, create=True)
        yield urls
    finally:
        for url in urls.values():
            migrate.drop_database(url)


@pytest.fixture(scope="session")
def engines(databases: dict[str, str]) -> Iterator[dict[str, sa.Engine]]:
    made = {service: sa.create_engine(url) for service, url in databases.items()}
    yield made
    for engine in made.values():
        engine.dispose()


@pytest.fixture
def clean_databases(engines: dict[str, sa.Engine]) -> None:
    """Empty every table (but alembic's) of every service database before the test."""
    for engine in engines.values():
        with engine.begin() as conn:
            migrate.empty_tables(conn)


@pytest.fixture
def amqp_uri() -> Iterator[str]:
    """A fresh RabbitMQ vhost for this test."""
    if not infra.port_open(infra.AMQP_HOST):
        pytest.fail(f"RabbitMQ does not answer on {infra.AMQP_HOST} (see README: Requirements)")
    name = f"bp_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    uri = infra.create_vhost(name)
    yield uri
    infra.delete_vhost(name)


def delete_redis_keys(prefix: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass  # Redis down: nothing of ours to delete (the keys expire in any case)


@pytest.fixture(scope="session", autouse=True)
def redis_keys_of_this_run() -> Iterator[None]:
    """Whatever this run's processes left in Redis (e.g. the local runner's) is deleted."""
    yield
    delete_redis_keys(REDIS_PREFIX)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix for this test alone (rate-limit windows and idempotency records
    start empty); its keys are deleted afterwards."""
    prefix = f"{REDIS_PREFIX}_{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_redis_keys(f"{prefix}:")


@pytest.fixture
def container_factory(amqp_uri: str, container_factory: Any) -> Any:
    """nameko's factory, set up after the vhost so containers die before the vhost goes."""
    return container_factory


@pytest.fixture(scope="session")
def jwt_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh Ed25519 key pair for this run: panel signs, the gateway verifies."""
    from services.common import tokens

    folder = tmp_path_factory.mktemp("keys")
    private_pem, public_pem = tokens.generate_keypair()
    (folder / "jwt_private.pem").write_text(private_pem)
    (folder / "jwt_public.pem").write_text(public_pem)
    from services.notify import webpush

    (folder / "vapid_private.pem").write_text(webpush.generate_vapid_key())
    # notify's own pair for the personal links in e-mails (the gateway verifies).
    link_private, link_public = tokens.generate_keypair()
    (folder / "link_private.pem").write_text(link_private)
    (folder / "link_public.pem").write_text(link_public)
    return {
        "link_private": str(folder / "link_private.pem"),
        "link_public": str(folder / "link_public.pem"),
        "link_private_key": tokens.load_private_key(link_private),
        "vapid": str(folder / "vapid_private.pem"),
        "private": str(folder / "jwt_private.pem"),
        "public": str(folder / "jwt_public.pem"),
        "private_key": tokens.load_private_key(private_pem),
    }


@pytest.fixture
def smtp_sink() -> Iterator[Any]:
    from tests.fakes.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def push_service() -> Iterator[Any]:
    """The fake Web Push service (RFC 8030/8291/8292), with its 'browsers'."""
    from tests.fakes.push_service import FakePushService

    service = FakePushService().start()
    yield service
    service.stop()


@pytest.fixture
def service_config(
    databases: dict[str, str],
    amqp_uri: str,
    clean_databases: None,
    jwt_keys: dict[str, Any],
    smtp_sink: Any,
    redis_prefix: str,
) -> Callable[..., dict[str, Any]]:
    """The service's own config.yml, pointed at this test's database, vhost and Redis keys."""

    def make(service: str, **overrides: Any) -> dict[str, Any]:
        config = load_service_config(service)
        config.update(
            AMQP_URI=amqp_uri,
            METRICS_PORT=0,
            RETRY_DELAYS=[0.1, 0.2, 0.4],
            LOGGING=None,
            JWT_PRIVATE_KEY_FILE=jwt_keys["private"],
            JWT_PUBLIC_KEY_FILE=jwt_keys["public"],
            SMTP_URL=smtp_sink.url,
            VAPID_PRIVATE_KEY_FILE=jwt_keys["vapid"],
            LINK_PRIVATE_KEY_FILE=jwt_keys["link_private"],
            LINK_PUBLIC_KEY_FILE=jwt_keys["link_public"],
            REDIS_URL=REDIS_URL,
            REDIS_KEY_PREFIX=redis_prefix,
        )
        if service in databases:
            config["DATABASE_URL"] = databases[service]
        config.update(overrides)
        # Keys the service's own config.yml does not know are left out, as in production.
        known = load_service_config(service)
        return {
            k: v
            for k, v in config.items()
            if v is not None
            and (k in known or k in overrides or k in ("AMQP_URI", "METRICS_PORT", "RETRY_DELAYS"))
        }

    return make


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with ``message`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def gateway_overrides() -> dict[str, Any]:
    """Config the ``api`` fixture's gateway gets on top of its own (a module may override)."""
    return {}


@pytest.fixture
def responses_overrides() -> dict[str, Any]:
    """Config the ``api`` fixture's responses service gets on top of its own (a test may
    parametrize it)."""
    return {}


@pytest.fixture
def notify_overrides() -> dict[str, Any]:
    """Config the ``api`` fixture's notify service gets on top of its own (a module may
    override: a short ``REMINDER_INTERVAL``, say)."""
    return {}


@pytest.fixture
def api(
    container_factory: Any,
    service_config: Callable[..., dict[str, Any]],
    jwt_keys: dict[str, Any],
    gateway_overrides: dict[str, Any],
    responses_overrides: dict[str, Any],
    notify_overrides: dict[str, Any],
) -> Any:
    """polls, panel, responses, notify, feedback and the gateway running; an HTTP client for
    the gateway."""
    import requests

    from gateway.service import GatewayService
    from services.feedback.service import FeedbackService
    from services.notify.service import NotifyService
    from services.panel.service import PanelService
    from services.polls.service import PollsService
    from services.responses.service import ResponsesService
    from tests.support.gateway import Api, free_port, wait_ready

    container_factory(PollsService, service_config("polls", OUTBOX_POLL_INTERVAL=0.1)).start()
    container_factory(PanelService, service_config("panel", OUTBOX_POLL_INTERVAL=0.1)).start()
    container_factory(
        ResponsesService,
        service_config("responses", OUTBOX_POLL_INTERVAL=0.1, **responses_overrides),
    ).start()
    container_factory(
        NotifyService,
        service_config(
            "notify", OUTBOX_POLL_INTERVAL=0.1, DISPATCH_POLL_INTERVAL=0.2, **notify_overrides
        ),
    ).start()
    container_factory(FeedbackService, service_config("feedback", OUTBOX_POLL_INTERVAL=0.1)).start()
    port = free_port()
    gateway_config = service_config(
        "gateway", WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", RPC_TIMEOUT=10, **gateway_overrides
    )
    container_factory(GatewayService, gateway_config).start()
    client = Api(f"http://127.0.0.1:{port}", jwt_keys["private_key"], requests.Session())
    wait_ready(client)
    return client
