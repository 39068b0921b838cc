"""Gateway replicas share their state through Redis: two ``nameko run`` gateway processes answer
as one gateway would — an Idempotency-Key repeated at the other process gets the same receipt,
and a limit of 10 a minute holds across both. Replicas can listen on one port (SO_REUSEPORT,
as ``make run`` starts them). Without Redis (refused, or hung) submissions are still accepted
and no request waits longer than REDIS_TIMEOUT for it."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.intake import INTAKE_QUEUE
from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.gateway import (
    Api,
    GatewayProcesses,
    free_port,
    resident_token,
    serving_submissions,
)
from tests.support.responses import queue_depth

GM = "GM0344"


@pytest.fixture
def replicas(container_factory, service_config, jwt_keys, amqp_uri, redis_prefix, tmp_path):
    """polls in this process; ``replicas.start(**env)`` starts a gateway process on a free port
    and returns an API client once it serves submissions."""
    from services.polls.service import PollsService

    container_factory(PollsService, service_config("polls", OUTBOX_POLL_INTERVAL=0.1)).start()
    processes = GatewayProcesses(
        {
            "AMQP_URI": amqp_uri,
            "JWT_PUBLIC_KEY_FILE": jwt_keys["public"],
            "REDIS_KEY_PREFIX": redis_prefix,
        },
        tmp_path,
    )

    class Replicas:
        polls_config = service_config("polls")
        started = processes.started

        def start(self, port: int | None = None, **env: str) -> Api:
            port = port or free_port()
            processes.start(port, **env)
            api = Api(f"http://127.0.0.1:{port}", jwt_keys["private_key"], requests.Session())
            wait_for(lambda: serving_submissions(api), timeout=60, message="a gateway serving")
            return api

    yield Replicas()
    processes.stop_all()
    for process in processes.started:
        print(f"--- {process.log} ---\n{process.log.read_text(errors='replace')[-3000:]}")


def open_poll(replicas: Any, apis: list[Api]) -> dict[str, Any]:
    with ClusterRpcProxy(replicas.polls_config) as rpc:
        poll = rpc.polls.create_poll(GM, {"template_id": "veiligheidsgevoel"})
        rpc.polls.publish_poll(GM, poll["id"])
    for api in apis:
        token = resident_token(api, municipality=GM, buurt="BU03440111")
        wait_for(
            lambda api=api, token=token: (
                api.request("GET", f"/api/v1/polls/{poll['id']}", token=token).status_code == 200
            ),
            timeout=30,
            message="the poll in each gateway's cache",
        )
    return poll


def submit(api: Api, poll: dict[str, Any], token: str, key: str, answers: dict) -> Any:
    return api.request(
        "POST",
        f"/api/v1/polls/{poll['id']}/responses",
        token=token,
        json={"answers": answers},
        headers={"Idempotency-Key": key},
    )


def test_an_idempotency_key_repeated_at_another_replica_gets_the_same_receipt(replicas, amqp_uri):
    first, second = replicas.start(), replicas.start()
    poll = open_poll(replicas, [first, second])
    token = resident_token(first, municipality=GM, buurt="BU03440111")
    answers = minimal_answers(poll["definition"])
    key = str(uuid.uuid4())

    accepted = submit(first, poll, token, key, answers)
    repeated = submit(second, poll, token, key, answers)

    assert accepted.status_code == repeated.status_code == 202, (accepted.text, repeated.text)
    assert repeated.json() == accepted.json()
    assert repeated.headers["Location"] == accepted.headers["Location"]
    # The same key with another body, at either replica: 422, and nothing more is queued.
    other = {**answers, "veilig_buurt": 1 if answers["veilig_buurt"] != 1 else 2}
    for api in (second, first):
        reused = submit(api, poll, token, key, other)
        assert reused.status_code == 422, reused.text
        assert reused.json()["errors"][0]["field"] == "Idempotency-Key"
    wait_for(lambda: queue_depth(amqp_uri, INTAKE_QUEUE) >= 1, message="the submission queued")
    assert queue_depth(amqp_uri, INTAKE_QUEUE) == 1  # one submission published, not two


def test_a_limit_of_ten_a_minute_holds_across_two_replicas(replicas):
    """The per-token limit set to 10/min: twenty submissions of one resident, alternating
    between the replicas, get ten 202s and ten 429s with Retry-After."""
    replica_env = {"RATE_TOKEN": "10/min"}
    first, second = replicas.start(**replica_env), replicas.start(**replica_env)
    poll = open_poll(replicas, [first, second])
    token = resident_token(first, municipality=GM, buurt="BU03440111")
    answers = minimal_answers(poll["definition"])

    alternating = [first, second] * 10
    answered = [submit(api, poll, token, str(uuid.uuid4()), answers) for api in alternating]

    statuses = Counter(response.status_code for response in answered)
    assert statuses == Counter({202: 10, 429: 10}), statuses
    assert [r.status_code for r in answered[:10]] == [202] * 10  # the first ten, at both
    for refused in answered[10:]:
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_replicas_listen_on_one_port(replicas, jwt_keys):
    """``make run`` starts one gateway process per core on one port: each binds it with
    SO_REUSEPORT (eventlet's listen sets it), so the second starts, and when the first stops
    the second goes on answering on that port."""
    port = free_port()
    replicas.start(port)
    replicas.start(port)  # would exit with "Address already in use" without SO_REUSEPORT
    first, second = replicas.started
    first.terminate()
    first.wait(20)
    assert second.poll() is None
    fresh = Api(f"http://127.0.0.1:{port}", jwt_keys["private_key"], requests.Session())
    assert fresh.request("GET", "/healthz").status_code == 200


# --- the store's semantics, against the real Redis ---------------------------------------------


@pytest.fixture
def shared(redis_prefix):
    from gateway.sharedstate import SharedState
    from tests.conftest import REDIS_URL

    state = SharedState(REDIS_URL, prefix=redis_prefix)
    yield state
    state.close()


def test_idempotency_records_follow_the_ietf_draft_and_expire(shared):
    """New → in flight (409 for a repeat) → done (replayed; another body is a conflict);
    forgotten after a failure; every record has an expiry, a short one while in flight."""
    from gateway.intake import IDEMPOTENCY_TTL, IN_FLIGHT_TTL, IdempotencyStore

    store = IdempotencyStore(shared)
    assert store.begin("resident-1", "k", "fp") == ("new", None)
    assert store.begin("resident-1", "k", "fp") == ("in_flight", None)
    assert store.begin("resident-1", "k", "other") == ("conflict", None)
    assert store.begin("resident-2", "k", "fp") == ("new", None)  # keys are per resident
    assert 0 < shared.client.ttl(shared.key("idem", "resident-1", "k")) <= IN_FLIGHT_TTL

    store.finish("resident-1", "k", "fp", status=202, body={"receipt_id": "r"}, headers={"A": "b"})
    state, record = store.begin("resident-1", "k", "fp")
    assert state == "replay" and (record.status, record.body, record.headers) == (
        202,
        {"receipt_id": "r"},
        {"A": "b"},
    )
    assert store.begin("resident-1", "k", "other") == ("conflict", None)
    assert (
        IN_FLIGHT_TTL
        < shared.client.ttl(shared.key("idem", "resident-1", "k"))
        <= (IDEMPOTENCY_TTL)
    )

    store.forget("resident-2", "k")
    assert store.begin("resident-2", "k", "fp") == ("new", None)


# --- without Redis -------------------------------------------------------------------------------


def metric(api: Api, name: str, **labels: str) -> float:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in api.request("GET", "/metrics").text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def test_without_redis_submissions_are_accepted_and_limits_hold_per_process(replicas):
    """Redis refuses connections: submissions still get 202 (a repeat is absorbed downstream,
    by responses' one answer per resident), the per-token limit holds in the process, and the
    failure is a metric and a log line — never a 5xx."""
    api = replicas.start(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", RATE_TOKEN="10/min")
    poll = open_poll(replicas, [api])
    token = resident_token(api, municipality=GM, buurt="BU03440111")
    answers = minimal_answers(poll["definition"])

    answered = [submit(api, poll, token, str(uuid.uuid4()), answers) for _ in range(11)]

    assert [r.status_code for r in answered] == [202] * 10 + [429], [r.text for r in answered]
    assert metric(api, "buurtpeil_gateway_redis_unavailable_total", store="idempotency") >= 10
    assert metric(api, "buurtpeil_gateway_redis_unavailable_total", store="ratelimit") >= 11
    log = replicas.started[0].log.read_text()
    assert log.count("idempotency records and rate limits are per process") == 1, log[-2000:]


class BlackHole:
    """A TCP server that accepts connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.accepted: list[Any] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        import socket

        for connection in self.accepted:
            connection.close()
        # Wake the accepting thread before closing: a (green) thread left waiting on a closed
        # socket keeps its descriptor number in eventlet's hub (see tests/conftest.py).
        self.server.shutdown(socket.SHUT_RDWR)
        self.accepting.join(10)
        self.server.close()


def test_a_hung_redis_stalls_only_the_request_that_waits_for_it(replicas):
    """Redis accepts and never answers. A submission waits for it (up to REDIS_TIMEOUT) while
    the same gateway process goes on answering others — the Redis client's sockets are
    cooperative under eventlet — and is then accepted; during the pause after the failure the
    next submission does not wait for Redis at all."""
    import threading

    hole = BlackHole()
    try:
        api = replicas.start(
            REDIS_URL=f"redis://127.0.0.1:{hole.port}/0", REDIS_TIMEOUT="15", REDIS_PAUSE="120"
        )
        poll = open_poll(replicas, [api])
        token = resident_token(api, municipality=GM, buurt="BU03440111")
        answers = minimal_answers(poll["definition"])
        outcome: list[Any] = []
        waiting = threading.Thread(
            target=lambda: outcome.append(submit(api, poll, token, str(uuid.uuid4()), answers))
        )
        waiting.start()
        wait_for(lambda: hole.accepted, timeout=30, message="the gateway connecting to Redis")

        other = Api(api.base, api.private_key, requests.Session())
        assert other.request("GET", "/healthz").status_code == 200
        assert waiting.is_alive()  # answered while the submission still waited for Redis

        waiting.join(60)
        assert outcome and outcome[0].status_code == 202, outcome
        connections = len(hole.accepted)
        assert submit(api, poll, token, str(uuid.uuid4()), answers).status_code == 202
        assert len(hole.accepted) == connections  # Redis resting: not tried again at once
    finally:
        hole.close()
