"""@idempotent_handler: every service's way to handle an event. The event is claimed as
``<service>.<event>`` in the transaction that applies it: a duplicate is not applied again, a
handler that raises takes its claim back (and is applied by the retry), and what must follow the
commit runs after it, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.common.amqp import ConfirmingPublisher, events_exchange
from services.common.consumers import idempotent_handler
from services.common.db import Database, after_commit
from services.common.events import make_envelope
from tests.conftest import wait_for


def closed_event() -> dict:
    return make_envelope(
        "poll_closed",
        {
            "poll_id": str(uuid.uuid4()),
            "municipality_code": "GM0344",
            "closed_at": datetime.now(UTC).isoformat(),
            "reason": "manual",
        },
    )


def publish(amqp_uri: str, *bodies: dict) -> None:
    publisher = ConfirmingPublisher(amqp_uri)
    exchange = events_exchange("polls")
    for body in bodies:
        publisher.publish(body, exchange=exchange, routing_key="poll_closed", declare=[exchange])
    publisher.close()


def claims(engine: sa.Engine, event_id: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT handler FROM processed_events WHERE event_id = :e"),
                {"e": event_id},
            ).scalars()
        )


@pytest.fixture
def consumer(container_factory, service_config):
    """Applies poll_closed; fails for the poll ids in ``failing`` (count = times) after it has
    claimed the event; records what ran inside the transaction and after the commit."""
    state: dict = {"failing": {}, "applied": [], "committed": []}

    class Idem:
        name = "idem"
        db = Database()

        @idempotent_handler("polls", "poll_closed")
        def on_closed(self, s, event):
            poll_id = event.payload["poll_id"]
            state["applied"].append(poll_id)
            after_commit(s, lambda: state["committed"].append(poll_id))
            if state["failing"].get(poll_id, 0) > 0:
                state["failing"][poll_id] -= 1
                raise RuntimeError(f"poll {poll_id} not known yet")

    # The claims are kept in the polls test database.
    config = service_config("polls", RETRY_DELAYS=[0.2], MAX_ATTEMPTS=5)
    container_factory(Idem, config).start()
    return state


def test_a_duplicate_event_is_applied_once_under_the_service_and_event_name(
    consumer, engines, amqp_uri
):
    event = closed_event()
    poll_id = event["payload"]["poll_id"]
    publish(amqp_uri, event, event)
    wait_for(lambda: consumer["committed"], message="the event applied")
    later = closed_event()
    publish(amqp_uri, later)  # behind the duplicate on the same queue
    wait_for(lambda: later["payload"]["poll_id"] in consumer["committed"], message="next event")
    assert consumer["applied"].count(poll_id) == 1
    assert consumer["committed"].count(poll_id) == 1
    assert claims(engines["polls"], event["event_id"]) == ["idem.poll_closed"]


def test_a_handler_that_raises_takes_its_claim_back_and_the_retry_applies_it(
    consumer, engines, amqp_uri
):
    event = closed_event()
    poll_id = event["payload"]["poll_id"]
    consumer["failing"][poll_id] = 2
    publish(amqp_uri, event)
    wait_for(lambda: poll_id in consumer["committed"], message="applied by a retry")
    assert consumer["applied"].count(poll_id) == 3  # two rolled back, one committed
    assert consumer["committed"] == [poll_id]  # nothing after a rollback
    assert claims(engines["polls"], event["event_id"]) == ["idem.poll_closed"]


def test_two_idempotent_handlers_of_one_event_in_one_service_are_refused(
    container_factory, service_config
):
    class Twice:
        name = "twice"
        db = Database()

        @idempotent_handler("polls", "poll_closed")
        def on_closed(self, s, event):
            pass

        @idempotent_handler("polls", "poll_closed")
        def also_on_closed(self, s, event):
            pass

    container = container_factory(Twice, service_config("polls"))
    with pytest.raises(RuntimeError, match="one idempotent handler per event and service"):
        container.start()
