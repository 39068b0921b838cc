"""Publisher confirms by group commit (services.common.amqp.GroupConfirmPublisher), against the
real broker: many concurrent publishes share one confirm round trip, and a nack or a lost
connection fails exactly the callers whose messages the broker did not confirm."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import eventlet
from kombu import Connection, Queue

from services.common.amqp import GroupConfirmPublisher, PublishNacked
from tests.service.test_intake import minimal_answers, submit, voting  # noqa: F401 - fixture
from tests.support.gateway import free_port


def depth(amqp_uri: str, name: str) -> int:
    with Connection(amqp_uri) as conn:
        return conn.channel().queue_declare(queue=name, passive=True).message_count


def publish_all(publisher: GroupConfirmPublisher, n: int, routing_key: str) -> list[object]:
    """n concurrent publishes; each outcome: None (confirmed) or the exception raised."""
    outcomes: list[object] = [None] * n

    def one(i: int) -> None:
        try:
            publisher.publish({"i": i}, routing_key=routing_key)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[i] = exc

    pool = eventlet.GreenPool(n)
    for i in range(n):
        pool.spawn(one, i)
    pool.waitall()
    return outcomes


def test_concurrent_publishes_are_confirmed_together(amqp_uri):
    queue = Queue("t.group", exchange="", routing_key="t.group", durable=True)
    publisher = GroupConfirmPublisher(amqp_uri, lanes=1, declare=[queue])
    try:
        outcomes = publish_all(publisher, 200, "t.group")
    finally:
        publisher.close()
    assert outcomes == [None] * 200
    assert depth(amqp_uri, "t.group") == 200
    assert publisher.batches < 100, "confirms were not grouped"


def test_a_nack_fails_exactly_the_nacked_messages(amqp_uri):
    # The broker nacks publishes beyond max-length with reject-publish.
    queue = Queue(
        "t.full",
        exchange="",
        routing_key="t.full",
        durable=True,
        queue_arguments={"x-max-length": 5, "x-overflow": "reject-publish"},
    )
    publisher = GroupConfirmPublisher(amqp_uri, lanes=1, declare=[queue])
    try:
        outcomes = publish_all(publisher, 30, "t.full")
        confirmed = [o for o in outcomes if o is None]
        nacked = [o for o in outcomes if isinstance(o, PublishNacked)]
        assert len(confirmed) == 5 and len(nacked) == 25, outcomes
        assert publisher.batches < 30, "acks and nacks did not share a batch"
        assert depth(amqp_uri, "t.full") == 5
        # The channel is still good after nacks.
        with Connection(amqp_uri) as conn:
            conn.channel().queue_purge("t.full")
        assert publish_all(publisher, 3, "t.full") == [None] * 3
    finally:
        publisher.close()


class CuttableProxy:
    """A TCP proxy in front of RabbitMQ that can hold the broker's replies (so a batch waits
    for its confirms) and cut every connection (the broker's connection is lost)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = free_port()
        self.replies = threading.Event()
        self.replies.set()
        self.sockets: list[socket.socket] = []
        self.server = eventlet.listen(("127.0.0.1", self.port))
        self.accepting = eventlet.spawn(self._accept)

    def _accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            broker = socket.create_connection(self.upstream)
            self.sockets += [client, broker]
            eventlet.spawn(self._pipe, client, broker, None)
            eventlet.spawn(self._pipe, broker, client, self.replies)

    def _pipe(self, src: socket.socket, dst: socket.socket, gate: threading.Event | None) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if gate is not None:
                    gate.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets = []

    def close(self) -> None:
        self.cut()
        self.accepting.kill()
        self.server.close()


def test_a_lost_connection_fails_only_the_batch_in_flight(amqp_uri):
    parts = urlsplit(amqp_uri)
    proxy = CuttableProxy((parts.hostname, parts.port or 5672))
    via_proxy = urlunsplit(
        parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    )
    queue = Queue("t.cut", exchange="", routing_key="t.cut", durable=True)
    publisher = GroupConfirmPublisher(via_proxy, lanes=1, confirm_timeout=10, declare=[queue])
    outcomes: dict[str, object] = {}

    def one(name: str) -> None:
        try:
            publisher.publish({"name": name}, routing_key="t.cut")
            outcomes[name] = None
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[name] = exc

    try:
        one("before")
        assert outcomes["before"] is None
        proxy.replies.clear()  # the broker's confirms are held back from now on
        in_flight = eventlet.spawn(one, "in_flight")
        eventlet.sleep(0.5)  # published, waiting for its confirm
        assert publisher.batches == 2
        queued = [eventlet.spawn(one, name) for name in ("next_1", "next_2")]
        eventlet.sleep(0.2)  # waiting in the queue: the only lane is busy
        assert "in_flight" not in outcomes
        proxy.cut()
        proxy.replies.set()
        in_flight.wait()
        for thread in queued:
            thread.wait()
    finally:
        publisher.close()
        proxy.close()
    assert isinstance(outcomes["in_flight"], Exception), outcomes
    assert outcomes["next_1"] is None and outcomes["next_2"] is None, outcomes
    # Confirmed ones are on the queue; the failed one may be too (at-least-once).
    assert depth(amqp_uri, "t.cut") >= 3


def test_a_submission_the_broker_did_not_confirm_gets_503_and_no_receipt(
    api,
    voting,  # noqa: F811 - the fixture imported above
    monkeypatch,
):
    token = voting["tokens"][0]
    answers = minimal_answers(api, voting, token)

    def refuse(self, *args, **kwargs):
        raise PublishNacked("the broker nacked the message")

    with monkeypatch.context() as patch:
        patch.setattr(GroupConfirmPublisher, "publish", refuse)
        refused = submit(api, voting, token, answers, key="k-nack")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert "receipt_id" not in refused.json()
    # Nothing was accepted, so the same key may be retried and is then accepted.
    started = time.monotonic()
    retried = submit(api, voting, token, answers, key="k-nack")
    assert retried.status_code == 202, retried.text
    assert retried.json()["receipt_id"]
    assert time.monotonic() - started < 5
