"""The infrastructure fails under intake load, and no answer is lost or counted twice.

Private servers only (the shared broker and database are never touched): a three-node RabbitMQ
cluster of the test's own (tests/support/rabbit_cluster.py), one private node, and a private
PostgreSQL (tests/support/private_postgres.py). Buurtpeil runs as in production — each service
``nameko run`` in a process of its own, given every broker node in AMQP_URI (kombu fails over)
— and residents answer at half the peak of that same stack, each retrying with its
Idempotency-Key as docs/api.md says (tests/support/intake_load.py). The peak is measured first in
each test (``measure_peak``: the residents send as fast as the stack answers), because the
single-machine peak of docs/benchmarks.md (~850/s) is not what three brokers, every service and
the load generator sharing two cores can carry; FAULT_RATE=<n> sets a fixed rate instead.

- a node of the cluster killed -9 (not the intake queue's leader), later restarted;
- then the node holding the intake queue's leader killed -9, later restarted;
- the single private node stopped and started again: every service reconnects by itself, and
  the gateway learns of a poll published after the restart;
- responses' PostgreSQL stopped with ``pg_ctl stop -m immediate`` and started again.

Each prints ``fault: name=… accepted=… stored=… counted=… lost=… duplicated=… unavailable_s=…``
(shown again at the end of the run; docs/reliability.md keeps the table). ``unavailable_s`` is
the window in which residents got a 5xx, a timeout or no connection.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from services.common import migrate
from services.common.deadletter import DEFAULT_DELAYS, delay_queue
from services.common.intake import INTAKE_QUEUE
from tests.conftest import wait_for
from tests.support import private_postgres, rabbit_cluster
from tests.support.faults import LoadProcess, Stack, account, report_load, wait_drained
from tests.support.gateway import Api, resident_token, serving_submissions
from tests.support.notify import wait_for_consumer
from tests.support.rabbit_cluster import RabbitCluster
from tests.support.responses import GM

FIXED_RATE = float(os.environ.get("FAULT_RATE", "0"))  # 0: half the measured peak
PEAK_WARM_UP = 3.0  # seconds of the peak run not counted (connections, caches)
PEAK_SECONDS = 10.0  # seconds of the peak run that are counted
NAMEKO_RPC = ("rpc-", "rpc.reply-")  # request and reply queues, declared by nameko itself
WARM_UP = 8.0  # seconds of load before a fault
OUTAGE = 15.0  # seconds a killed node or server stays down
SETTLE = 5.0  # seconds of load after it is back

needs_rabbitmq = pytest.mark.skipif(
    not rabbit_cluster.available(), reason="rabbitmq-server is not installed here"
)


def open_poll(amqp_uri: str, api: Api, engine: sa.Engine) -> dict[str, Any]:
    """A poll for all of Utrecht, once the gateway serves it and responses knows it."""
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as rpc:
        poll = rpc.polls.create_poll(GM, {"template_id": "veiligheidsgevoel"})
        rpc.polls.publish_poll(GM, poll["id"])
    token = resident_token(api, municipality=GM, buurt="BU03440111")

    def known() -> bool:
        with engine.connect() as conn:
            in_responses = conn.execute(
                sa.text("SELECT count(*) FROM polls WHERE id = :p"), {"p": poll["id"]}
            ).scalar()
        served = api.request("GET", f"/api/v1/polls/{poll['id']}", token=token).status_code
        return bool(in_responses) and served == 200

    wait_for(known, timeout=60, message="the gateway and responses to know the poll")
    return poll


def wait_serving(stack: Stack, api: Api, amqp_uri: str) -> None:
    wait_for(
        lambda: serving_submissions(api) or not all(stack.alive().values()),
        timeout=120,
        message="the gateway serving",
    )
    assert all(stack.alive().values()), stack.log_tails()
    wait_for_consumer(amqp_uri, INTAKE_QUEUE, timeout=120)


def assert_nothing_lost(numbers: dict[str, int], load: Any) -> None:
    assert load.problems() == {}, load.problems()
    assert numbers["lost"] == 0 and numbers["duplicated"] == 0, numbers
    assert numbers["accepted"] == numbers["stored"] == numbers["counted"] > 0, numbers


@pytest.fixture
def cluster(tmp_path):
    made: list[RabbitCluster] = []

    def start(size: int) -> RabbitCluster:
        made.append(RabbitCluster(tmp_path / "rabbit", size=size).start())
        return made[-1]

    yield start
    for each in made:
        each.stop()
        each.remove()


@pytest.fixture
def start_load():
    """``start_load(stack, poll, rate)``: residents answering through the stack's gateway at
    ``rate`` a second (0: as fast as it answers), in a process of their own; whatever still
    runs at the end is killed."""
    started: list[LoadProcess] = []

    def start(services: Stack, poll: dict[str, Any], rate: float) -> LoadProcess:
        key = services.jwt_keys["private"]
        started.append(LoadProcess(services.logs, services.url, poll, key, rate))
        return started[-1]

    yield start
    for load in started:
        load.kill()


@pytest.fixture
def stack(databases, jwt_keys, redis_prefix, tmp_path):
    made: list[Stack] = []

    def start(amqp_uri: str, *services: str, **overrides: str) -> Stack:
        urls = {**databases, **{k: v for k, v in overrides.items() if k in databases}}
        made.append(Stack(amqp_uri, urls, jwt_keys, tmp_path, redis_prefix).start(*services))
        return made[-1]

    yield start
    for each in made:
        each.stop()
        print(each.log_tails())


def quorum_audit(cluster: RabbitCluster, amqp_uri: str) -> dict[str, str]:
    """Every durable queue but nameko's RPC queues is a quorum queue (an RPC request lost with
    a node is a call that times out and is answered 503, not data lost); the retry delay queues
    are declared here too (the broker accepts their quorum arguments)."""
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for seconds in DEFAULT_DELAYS:
            delay_queue(seconds)(channel).declare()
    queues = cluster.queue_types()
    not_quorum = {
        name: kind
        for name, (kind, durable, auto_delete) in queues.items()
        if kind != "quorum" and durable and not auto_delete and not name.startswith(NAMEKO_RPC)
    }
    assert not_quorum == {}, not_quorum
    assert queues[INTAKE_QUEUE][0] == "quorum"
    return {name: kind for name, (kind, *_) in queues.items()}


def measure_peak(
    services: Stack, api: Api, amqp_uri: str, engine: sa.Engine, start_load: Any
) -> tuple[float, float]:
    """(peak, rate): what this stack accepts per second with the residents sending as fast as
    it answers, and the rate for the faults — half of it (or FAULT_RATE). The peak run's
    answers are accounted like a fault's: none may be lost or doubled at the peak either."""
    poll = open_poll(amqp_uri, api, engine)
    load = start_load(services, poll, 0)
    time.sleep(PEAK_WARM_UP + PEAK_SECONDS + 2.0)  # + the load process's own start-up
    stopped = time.time()
    result = load.finish()
    counted_from = result.started + PEAK_WARM_UP
    peak = result.rate_between(counted_from, min(stopped, counted_from + PEAK_SECONDS))
    wait_drained(engine, poll["id"], len(result.accepted))
    numbers = account(engine, poll, result)
    print(f"peak: accepted={numbers['accepted']} accepted_per_s={peak:.0f}")
    assert_nothing_lost(numbers, result)
    return peak, FIXED_RATE or max(1.0, peak / 2)


@needs_rabbitmq
def test_a_cluster_node_and_then_the_intake_leader_killed_under_load(
    cluster, stack, start_load, engines
):
    brokers = cluster(3)
    amqp_uri = brokers.amqp_uri()
    services = stack(amqp_uri, "polls", "responses", "gateway")
    engine = engines["responses"]
    api = Api(services.url, services.jwt_keys["private_key"], requests.Session())
    wait_serving(services, api, amqp_uri)
    quorum_audit(brokers, amqp_uri)
    peak, rate = measure_peak(services, api, amqp_uri, engine, start_load)

    for name, pick in (
        ("rabbitmq-node-kill", lambda leader: next(n for n in brokers.nodes if n != leader)),
        ("rabbitmq-leader-kill", lambda leader: leader),
    ):
        poll = open_poll(amqp_uri, api, engine)
        load = start_load(services, poll, rate)
        time.sleep(WARM_UP)
        victim = pick(brokers.queue_leader(INTAKE_QUEUE))
        fault_at = time.time()
        brokers.kill(victim)
        time.sleep(OUTAGE)
        brokers.restart(victim)
        wait_for(
            lambda victim=victim: victim.name in brokers.queue_members_online(INTAKE_QUEUE),
            timeout=120,
            message=f"{victim.name} back among the intake queue's members",
        )
        time.sleep(SETTLE)
        result = load.finish()
        assert all(services.alive().values()), services.log_tails()
        wait_drained(engine, poll["id"], len(result.accepted))
        numbers = account(engine, poll, result)
        report_load(name, numbers, result, fault_at, peak)
        assert_nothing_lost(numbers, result)


@needs_rabbitmq
def test_a_broker_restart_under_load_every_service_reconnects(cluster, stack, start_load, engines):
    broker = cluster(1)
    (node,) = broker.nodes
    amqp_uri = broker.amqp_uri()
    services = stack(amqp_uri, "polls", "panel", "notify", "responses", "feedback", "gateway")
    engine = engines["responses"]
    api = Api(services.url, services.jwt_keys["private_key"], requests.Session())
    wait_serving(services, api, amqp_uri)
    peak, rate = measure_peak(services, api, amqp_uri, engine, start_load)
    poll = open_poll(amqp_uri, api, engine)
    consumed = consumed_queues(broker)
    load = start_load(services, poll, rate)
    time.sleep(WARM_UP)

    fault_at = time.time()
    node.stop()
    time.sleep(OUTAGE)
    broker.restart(node)
    # Every durable queue that had a consumer has one again: each service reconnected.
    try:
        wait_for(lambda: consumed <= consumed_queues(broker), timeout=180, message="consumers")
    except pytest.fail.Exception:
        missing = sorted(consumed - consumed_queues(broker))
        queues = broker.ctl("list_queues", "name", "messages", "consumers", check=False)
        raise AssertionError(
            f"no consumer on {missing}; alive: {services.alive()}\n{queues}"
        ) from None
    # The gateway's poll cache follows events again (its broadcast queue was re-made).
    later = open_poll(amqp_uri, api, engine)
    time.sleep(SETTLE)
    result = load.finish()
    assert all(services.alive().values()), services.log_tails()
    wait_drained(engine, poll["id"], len(result.accepted))
    numbers = account(engine, poll, result)
    report_load("rabbitmq-restart", numbers, result, fault_at, peak)
    assert_nothing_lost(numbers, result)
    assert later["id"] != poll["id"]


def consumed_queues(broker: RabbitCluster) -> set[str]:
    """Durable queues with at least one consumer (transient ones get new names on reconnect)."""
    out = broker.ctl(
        "list_queues", "--no-table-headers", "-q", "name", "durable", "auto_delete", "consumers"
    )
    found = set()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[1] == "true" and parts[2] == "false" and int(parts[3]) > 0:
            found.add(parts[0])
    return found


@pytest.fixture
def private_pg():
    server = private_postgres.PrivatePostgres().start()
    yield server
    server.remove()


@pytest.mark.skipif(not private_postgres.available(), reason="no PostgreSQL server binaries")
def test_postgres_stopped_immediately_and_restarted_under_load(
    private_pg, stack, start_load, amqp_uri
):
    url = private_pg.url("bp_fault_responses")
    migrate.upgrade("responses", url, create=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    services = stack(amqp_uri, "polls", "responses", "gateway", responses=url)
    api = Api(services.url, services.jwt_keys["private_key"], requests.Session())
    wait_serving(services, api, amqp_uri)
    peak, rate = measure_peak(services, api, amqp_uri, engine, start_load)
    poll = open_poll(amqp_uri, api, engine)
    load = start_load(services, poll, rate)
    time.sleep(WARM_UP)

    fault_at = time.time()
    private_pg.stop("immediate")
    engine.dispose()  # the test's own connections died with the server too
    time.sleep(OUTAGE)
    private_pg.start()
    time.sleep(SETTLE)
    result = load.finish()
    assert all(services.alive().values()), services.log_tails()
    wait_drained(engine, poll["id"], len(result.accepted))
    numbers = account(engine, poll, result)
    report_load("postgres-immediate-stop", numbers, result, fault_at, peak)
    assert_nothing_lost(numbers, result)
    engine.dispose()
