"""The transactional outbox: at-least-once publication, exactly-once effect."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common import outbox
from services.common.amqp import ConfirmingPublisher
from services.common.consumers import event_handler
from services.common.db import Database
from services.polls import lifecycle
from tests.conftest import wait_for

GM = "GM0344"


def publish_a_poll(engine: sa.Engine) -> str:
    """Create and publish a poll the way the service does, leaving the event in the outbox."""
    with Session(engine) as session, session.begin():
        now = datetime.now(UTC)
        poll = lifecycle.create_poll(
            session,
            municipality_code=GM,
            now=now,
            data={"template_id": "veiligheidsgevoel", "audience": {"kind": "municipality"}},
        )
        lifecycle.publish_poll(
            session, municipality_code=GM, poll_id=str(poll.id), now=now, emit=outbox.add_event
        )
        return str(poll.id)


def pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(outbox.outbox.c.sent_at.is_(None))
        ).scalar_one()


@pytest.fixture
def idempotent_consumer(container_factory, service_config):
    return start_idempotent_consumer(container_factory, service_config)


def start_idempotent_consumer(container_factory, service_config):
    """A consumer that records every delivery, and applies each event once (claim_event)."""
    deliveries: list[str] = []
    effects: list[str] = []

    class Consumer:
        name = "outbox_test_consumer"
        db = Database()

        @event_handler("polls", "poll_published")
        def on_published(self, event):
            deliveries.append(str(event.id))
            with self.db.transaction() as session:
                if outbox.claim_event(session, event, "outbox_test_consumer.on_published"):
                    effects.append(event.payload["poll_id"])

    # The consumer keeps its processed-event claims in the polls test database.
    container = container_factory(Consumer, service_config("polls"))
    container.start()
    return deliveries, effects


def test_relay_killed_between_publish_and_mark_publishes_again_and_consumer_applies_once(
    engines, databases, amqp_uri, idempotent_consumer
):
    deliveries, effects = idempotent_consumer
    engine = engines["polls"]
    poll_id = publish_a_poll(engine)
    assert pending(engine) == 1

    crashed = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("crashing_relay.py")),
            databases["polls"],
            amqp_uri,
            "polls",
        ],
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    wait_for(lambda: deliveries, message="the event published by the killed relay")
    assert pending(engine) == 1  # killed before marking: still pending

    # PostgreSQL ends the killed relay's session — and with it its advisory lock — when it
    # notices the closed connection, a moment after the kill; until then the relay yields (0).
    publisher = ConfirmingPublisher(amqp_uri)
    published = wait_for(
        lambda: outbox.relay_pending(engine, publisher, service="polls"),
        message="the relay lock, released with the killed relay's session",
    )
    assert published == 1
    assert pending(engine) == 0
    wait_for(lambda: len(deliveries) == 2, message="the second publication")
    time.sleep(0.3)
    assert deliveries[0] == deliveries[1]  # the same event id, twice on the wire
    assert effects == [poll_id]  # applied once


def test_relay_publishes_in_order_and_only_once_when_healthy(
    engines, amqp_uri, idempotent_consumer
):
    deliveries, effects = idempotent_consumer
    engine = engines["polls"]
    ids = [publish_a_poll(engine) for _ in range(5)]
    publisher = ConfirmingPublisher(amqp_uri)
    assert outbox.relay_pending(engine, publisher, service="polls", batch_size=3) == 3
    assert outbox.relay_pending(engine, publisher, service="polls", batch_size=3) == 2
    assert outbox.relay_pending(engine, publisher, service="polls", batch_size=3) == 0
    wait_for(lambda: len(effects) == 5, message="five events")
    time.sleep(0.3)
    with engine.connect() as conn:
        written = [
            str(e)
            for e in conn.execute(
                sa.select(outbox.outbox.c.event_id).order_by(outbox.outbox.c.id)
            ).scalars()
        ]
    assert deliveries == written  # delivered once each, in the order they were written
    assert sorted(effects) == sorted(ids)


def test_a_payload_that_breaks_the_catalogue_never_enters_the_outbox(engines):
    with Session(engines["polls"]) as session, session.begin():
        with pytest.raises(ValueError, match="invalid poll_closed payload"):
            outbox.add_event(session, "poll_closed", {"poll_id": "nope"})


def returned_count(service: str, event: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"service": service, "event": event}
    return REGISTRY.get_sample_value("buurtpeil_outbox_returned_total", labels) or 0.0


def test_an_event_no_queue_is_bound_for_stays_pending_until_one_is(
    engines, amqp_uri, container_factory, service_config
):
    """Defect 15.15c: published without ``mandatory``, an event no queue was bound for (its
    consumers not started yet) was confirmed, marked sent and lost. Now the broker returns
    it and the row stays pending until a queue is bound."""
    engine = engines["polls"]
    poll_id = publish_a_poll(engine)
    publisher = ConfirmingPublisher(amqp_uri)
    before = returned_count("polls", "poll_published")

    assert outbox.relay_pending(engine, publisher, service="polls") == 0  # this vhost: no queue
    assert pending(engine) == 1
    assert returned_count("polls", "poll_published") == before + 1

    deliveries, effects = start_idempotent_consumer(container_factory, service_config)
    assert outbox.relay_pending(engine, publisher, service="polls") == 1  # same channel
    assert pending(engine) == 0
    wait_for(lambda: effects == [poll_id], message="the event, once a queue is bound")
    publisher.close()
