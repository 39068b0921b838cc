"""Out-of-order events (issue 15 item 4): events of one source reach a consumer on separate
queues, so a pair can arrive the wrong way round. Each pair is delivered in the wrong order
through the real broker, to the real services: the erased stay erased, a closed poll ends
closed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy
from prometheus_client import REGISTRY

from services.feedback.service import FeedbackService
from services.notify.service import NotifyService
from services.responses.service import ResponsesService
from tests.conftest import wait_for
from tests.support.notify import GM, panel_without_quiet_hours, poll_payload, publish_event

# Retries come quickly and often enough that the late event always arrives in time.
FAST_RETRIES = {"RETRY_DELAYS": [0.2], "MAX_ATTEMPTS": 40, "OUTBOX_POLL_INTERVAL": 0.1}


@pytest.fixture
def consumers(container_factory, service_config):
    panel_without_quiet_hours(container_factory, service_config)
    for cls, name in (
        (NotifyService, "notify"),
        (ResponsesService, "responses"),
        (FeedbackService, "feedback"),
    ):
        container_factory(cls, service_config(name, **FAST_RETRIES)).start()


def retried(service: str, event: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "buurtpeil_events_consumed_total",
            {"service": service, "event": event, "outcome": "retried"},
        )
        or 0.0
    )


def claimed(engine: sa.Engine, event_id: str, handler: str) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM processed_events WHERE event_id = :e AND handler = :h"
                ),
                {"e": event_id, "h": handler},
            ).scalar()
        )


def resident(resident_id: str, buurt: str, at: datetime, *, joined: bool) -> dict:
    return {
        "resident_id": resident_id,
        "municipality_code": GM,
        "buurt_code": buurt,
        "wijk_code": "WK" + buurt[2:8],
        "age_band": "45_64",
        "sex": "vrouw",
        "language": "nl",
        "self_selected": False,
        "consent": True,
        "email": "inwoner@example.nl",
        ("joined_at" if joined else "updated_at"): at.isoformat(),
    }


def test_resident_events_after_resident_left_bring_no_one_back(consumers, engines, amqp_uri):
    engine = engines["notify"]
    rid = str(uuid.uuid4())
    at = datetime.now(UTC)
    left = publish_event(
        amqp_uri,
        "resident_left",
        {"resident_id": rid, "municipality_code": GM, "left_at": at.isoformat()},
    )
    wait_for(lambda: claimed(engine, left["event_id"], "notify.resident_left"), message="left")
    late = [
        publish_event(amqp_uri, "resident_joined", resident(rid, "BU03440111", at, joined=True)),
        publish_event(
            amqp_uri,
            "resident_updated",
            resident(rid, "BU03440211", at + timedelta(seconds=1), joined=False),
        ),
    ]
    for envelope, handler in zip(
        late, ("notify.resident_joined", "notify.resident_updated"), strict=True
    ):
        wait_for(lambda e=envelope, h=handler: claimed(engine, e["event_id"], h), message=handler)
    with engine.connect() as conn:
        for table, column in (("residents", "id"), ("endpoints", "resident_id")):
            found = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :r"), {"r": rid}
            ).scalar()
            assert found == 0, f"{table} holds the resident who left"
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM endpoints WHERE address = 'inwoner@example.nl'")
            ).scalar()
            == 0
        )


def test_an_older_profile_event_does_not_overwrite_a_newer_one(consumers, engines, amqp_uri):
    engine = engines["notify"]
    rid = str(uuid.uuid4())
    at = datetime.now(UTC)
    newer = publish_event(
        amqp_uri,
        "resident_updated",
        resident(rid, "BU03440211", at + timedelta(minutes=5), joined=False),
    )
    wait_for(lambda: claimed(engine, newer["event_id"], "notify.resident_updated"), message="new")
    older = publish_event(amqp_uri, "resident_joined", resident(rid, "BU03440111", at, joined=True))
    wait_for(lambda: claimed(engine, older["event_id"], "notify.resident_joined"), message="old")
    with engine.connect() as conn:
        buurt = conn.execute(
            sa.text("SELECT buurt_code FROM residents WHERE id = :r"), {"r": rid}
        ).scalar()
    assert buurt == "BU03440211"


def test_poll_closed_before_poll_published_leaves_the_poll_closed(consumers, engines, amqp_uri):
    payload = poll_payload(audience={"kind": "municipality"})
    services = ("notify", "responses", "feedback")
    before = {s: retried(s, "poll_closed") for s in services}
    closed = publish_event(
        amqp_uri,
        "poll_closed",
        {
            "poll_id": payload["poll_id"],
            "municipality_code": GM,
            "closed_at": datetime.now(UTC).isoformat(),
            "reason": "manual",
        },
    )

    def met(service):  # tried and waiting for a retry, or taken (and done with)
        return retried(service, "poll_closed") > before[service] or claimed(
            engines[service], closed["event_id"], f"{service}.poll_closed"
        )

    # Every consumer has met the close before the publication is even sent: the wrong order
    # for certain.
    wait_for(lambda: all(met(s) for s in services), message="poll_closed met first")
    publish_event(amqp_uri, "poll_published", payload)

    def closed_everywhere():
        found = {}
        for service in services:
            with engines[service].connect() as conn:
                found[service] = conn.execute(
                    sa.text("SELECT closed_at IS NOT NULL FROM polls WHERE id = :p"),
                    {"p": payload["poll_id"]},
                ).scalar()
        return all(found.values()) and found

    wait_for(closed_everywhere, timeout=20, message="the poll closed in every projection")


def test_a_preference_change_does_not_hide_a_later_profile_event(
    consumers, engines, amqp_uri, service_config
):
    """Preferences are notify's own: changing them does not make the next profile event from
    panel (written before notify's clock reached it) look older than what is stored."""
    engine = engines["notify"]
    rid = str(uuid.uuid4())
    at = datetime.now(UTC) - timedelta(minutes=1)
    joined = publish_event(
        amqp_uri, "resident_joined", resident(rid, "BU03440111", at, joined=True)
    )
    wait_for(lambda: claimed(engine, joined["event_id"], "notify.resident_joined"), message="in")
    with ClusterRpcProxy(service_config("notify")) as rpc:
        rpc.notify.set_preferences(rid, {"channel_order": ["email"]})
    moved = publish_event(
        amqp_uri,
        "resident_updated",
        resident(rid, "BU03440211", at + timedelta(seconds=1), joined=False),
    )
    wait_for(lambda: claimed(engine, moved["event_id"], "notify.resident_updated"), message="mv")
    with engine.connect() as conn:
        buurt = conn.execute(
            sa.text("SELECT buurt_code FROM residents WHERE id = :r"), {"r": rid}
        ).scalar()
    assert buurt == "BU03440211"


def test_response_recorded_before_poll_published_leaves_the_invitation_answered(
    consumers, engines, amqp_uri
):
    """notify writes a poll's invitations when it handles ``poll_published``; responses records
    an answer (and emits ``response_recorded``) as soon as it has the poll, so notify can meet
    the answer first (its fan-out still running, or its queues drained after a restart in the
    other order). Marking nothing then, notify wrote the invitation unanswered afterwards: the
    resident got reminders for a poll they had answered, and no feedback meant for those who
    answered."""
    engine = engines["notify"]
    rid = str(uuid.uuid4())
    joined = publish_event(
        amqp_uri,
        "resident_joined",
        resident(rid, "BU03440111", datetime.now(UTC) - timedelta(minutes=1), joined=True),
    )
    wait_for(lambda: claimed(engine, joined["event_id"], "notify.resident_joined"), message="in")
    payload = poll_payload(audience={"kind": "municipality"})
    before = retried("notify", "response_recorded")
    answered = publish_event(
        amqp_uri,
        "response_recorded",
        {
            "poll_id": payload["poll_id"],
            "municipality_code": GM,
            "resident_id": rid,
            "recorded_at": datetime.now(UTC).isoformat(),
        },
    )
    # notify has met the answer before the publication is even sent: the wrong order for
    # certain (tried and waiting for a retry, or taken and done with).
    wait_for(
        lambda: (
            retried("notify", "response_recorded") > before
            or claimed(engine, answered["event_id"], "notify.response_recorded")
        ),
        message="response_recorded met first",
    )
    publish_event(amqp_uri, "poll_published", payload)

    def invitation():
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT answered FROM invitations WHERE poll_id = :p AND resident_id = :r"),
                {"p": payload["poll_id"], "r": rid},
            ).scalar()

    wait_for(lambda: invitation() is not None, message="the invitation")
    wait_for(
        lambda: claimed(engine, answered["event_id"], "notify.response_recorded"),
        timeout=20,
        message="response_recorded taken",
    )
    assert invitation() is True
