"""Event consumers: invalid messages and failing handlers end in the dead-letter queue after
bounded, delayed retries; operations can inspect and replay them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from services.common import deadletter
from services.common.amqp import ConfirmingPublisher, events_exchange
from services.common.consumers import event_handler
from services.common.events import make_envelope
from tests.conftest import wait_for

QUEUE = "evt-polls-poll_closed--flaky.on_closed"


def closed_event(**overrides):
    payload = {
        "poll_id": str(uuid.uuid4()),
        "municipality_code": "GM0344",
        "closed_at": datetime.now(UTC).isoformat(),
        "reason": "manual",
    }
    return make_envelope("poll_closed", {**payload, **overrides})


def publish(amqp_uri, body):
    publisher = ConfirmingPublisher(amqp_uri)
    exchange = events_exchange("polls")
    publisher.publish(body, exchange=exchange, routing_key="poll_closed", declare=[exchange])
    publisher.close()


@pytest.fixture
def flaky(container_factory, service_config):
    """A consumer whose handler fails for poll ids listed in ``failing`` (count = times)."""
    state = {"failing": {}, "attempts": {}, "handled": [], "times": {}}

    class Flaky:
        name = "flaky"

        @event_handler("polls", "poll_closed")
        def on_closed(self, event):
            poll_id = event.payload["poll_id"]
            state["attempts"][poll_id] = state["attempts"].get(poll_id, 0) + 1
            state["times"].setdefault(poll_id, []).append(time.monotonic())
            if state["failing"].get(poll_id, 0) > 0:
                state["failing"][poll_id] -= 1
                raise RuntimeError(f"downstream unavailable for {poll_id}")
            state["handled"].append(poll_id)

    config = service_config("polls", RETRY_DELAYS=[0.2, 0.4, 0.8], MAX_ATTEMPTS=4)
    container = container_factory(Flaky, config)
    container.start()
    return state


def test_invalid_message_is_dead_lettered_and_the_rest_keeps_flowing(flaky, amqp_uri):
    bad = closed_event()
    bad["payload"]["reason"] = "because"  # not in the catalogue's schema
    publish(amqp_uri, bad)
    publish(amqp_uri, {"not": "an envelope"})
    good = closed_event()
    publish(amqp_uri, good)

    wait_for(lambda: flaky["handled"], message="the valid event")
    assert flaky["handled"] == [good["payload"]["poll_id"]]
    dead = wait_for(
        lambda: (
            deadletter.show(amqp_uri, f"{QUEUE}.dlq")
            if len(deadletter.show(amqp_uri, f"{QUEUE}.dlq")) == 2
            else None
        ),
        message="two dead letters",
    )
    assert {d["reason"] for d in dead} == {"invalid"}
    assert any("reason" in d["error"] for d in dead)
    assert dead[0]["origin"] == QUEUE


def test_failing_handler_is_retried_with_growing_delays_then_succeeds(flaky, amqp_uri):
    event = closed_event()
    poll_id = event["payload"]["poll_id"]
    flaky["failing"][poll_id] = 2
    publish(amqp_uri, event)
    wait_for(lambda: flaky["handled"], timeout=15, message="success on the third attempt")
    assert flaky["attempts"][poll_id] == 3
    first, second, third = flaky["times"][poll_id]
    assert second - first >= 0.2  # level 1 delay (0.2 s + jitter)
    assert third - second >= 0.4  # level 2 delay
    assert deadletter.show(amqp_uri, f"{QUEUE}.dlq") == []


def test_always_failing_message_is_dead_lettered_without_blocking_others_and_replays(
    flaky, amqp_uri
):
    stuck = closed_event()
    stuck_id = stuck["payload"]["poll_id"]
    flaky["failing"][stuck_id] = 10**6
    publish(amqp_uri, stuck)
    others = [closed_event() for _ in range(3)]
    for other in others:
        publish(amqp_uri, other)
    wait_for(lambda: len(flaky["handled"]) == 3, message="the other events")

    dead = wait_for(
        lambda: deadletter.show(amqp_uri, f"{QUEUE}.dlq"), timeout=15, message="the dead letter"
    )
    assert flaky["attempts"][stuck_id] == 4  # MAX_ATTEMPTS
    assert dead[0]["reason"] == "max_attempts"
    assert "downstream unavailable" in dead[0]["error"]
    assert dead[0]["body"]["payload"]["poll_id"] == stuck_id

    flaky["failing"][stuck_id] = 0  # the downstream problem is fixed
    assert deadletter.replay(amqp_uri, f"{QUEUE}.dlq") == 1
    wait_for(lambda: stuck_id in flaky["handled"], message="the replayed event")
    assert deadletter.show(amqp_uri, f"{QUEUE}.dlq") == []


def test_an_ack_that_finds_the_connection_gone_leaves_the_service_running(
    container_factory, service_config, amqp_uri, monkeypatch
):
    """Handled, but the ack cannot be sent (the broker went away meanwhile): nameko stopped the
    whole container for that — notify died so in the fault suite's broker restart. The
    message is left to be redelivered instead, and the service goes on."""
    from nameko.messaging import QueueConsumer

    handled = []

    class Steady:
        name = "steady"

        @event_handler("polls", "poll_closed")
        def on_closed(self, event):
            handled.append(event.payload["poll_id"])

    ack_message = QueueConsumer.ack_message
    refused = []

    def connection_gone_once(self, message):
        if not refused:
            refused.append(message)
            raise ConnectionResetError(104, "Connection reset by peer")
        return ack_message(self, message)

    monkeypatch.setattr(QueueConsumer, "ack_message", connection_gone_once)
    container = container_factory(Steady, service_config("polls"))
    container.start()
    first, second = closed_event(), closed_event()
    publish(amqp_uri, first)
    wait_for(lambda: refused, message="the first ack refused")
    publish(amqp_uri, second)
    wait_for(lambda: second["payload"]["poll_id"] in handled, message="the second event handled")
    assert not container._died.ready()  # the container did not stop
