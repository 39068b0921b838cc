"""Erasure (issue 15 item 3): after ``DELETE /api/v1/me`` no copy of the resident is left — in
no table of any service, outboxes included, and in no dead-letter queue; the events carry no
link from the resident to their response; dead letters holding personal data expire."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import redis
import sqlalchemy as sa
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.amqp import ConfirmingPublisher, events_exchange
from services.common.consumers import event_handler
from services.common.deadletter import dlq_name
from services.common.events import make_envelope
from tests.conftest import REDIS_URL, wait_for
from tests.support import infra
from tests.support.answers import minimal_answers
from tests.support.listeners import recorder
from tests.support.panel import UTRECHT, profile, utrecht_files


def unpublished(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar()


def publish_raw(amqp_uri: str, source: str, name: str, envelope: dict) -> None:
    publisher = ConfirmingPublisher(amqp_uri)
    exchange = events_exchange(source)
    publisher.publish(envelope, exchange=exchange, routing_key=name, declare=[exchange])
    publisher.close()


def test_erasure_leaves_no_copy_in_tables_outboxes_or_dead_letter_queues(
    api, service_config, engines, amqp_uri, container_factory, redis_prefix
):
    cls, recorded = recorder("responses", "response_recorded", name="recorded_watch")
    container_factory(cls, service_config("responses")).start()
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    admin = api.staff_token(UTRECHT, "admin")
    batch = api.request(
        "POST", "/admin/v1/invitation-batches", token=admin, json={"per_wijk": {"WK034401": 1}}
    ).json()
    code = batch["csv"].splitlines()[1].split(",")[0]
    session = api.request(
        "POST", "/api/v1/join", json={"invitation_code": code, **profile()}
    ).json()
    token = session["access_token"]
    resident_id = api.request("GET", "/api/v1/me", token=token).json()["resident_id"]
    moved = api.request("PATCH", "/api/v1/me", token=token, json={"birth_year": 1981})
    assert moved.status_code == 200, moved.text

    poll = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={
            "template_id": "veiligheidsgevoel",
            "audience": {"kind": "areas", "area_codes": ["WK034401"]},
        },
    ).json()
    api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)

    def invitation():
        with engines["notify"].connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT answered, wijk_code, buurt_code FROM invitations "
                    "WHERE poll_id = :p AND resident_id = :r"
                ),
                {"p": poll["id"], "r": resident_id},
            ).first()

    wait_for(invitation, message="the invitation")
    definition = api.request("GET", f"/api/v1/polls/{poll['id']}", token=token).json()["definition"]
    sent = api.request(
        "POST",
        f"/api/v1/polls/{poll['id']}/responses",
        token=token,
        json={"answers": minimal_answers(definition)},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert sent.status_code == 202, sent.text
    wait_for(lambda: invitation()[0], message="response_recorded reaching notify")
    # notify keeps that the invitation was answered — not when, and no longer where.
    assert tuple(invitation()) == (True, None, None)
    wait_for(lambda: recorded, message="response_recorded")
    assert "response_id" not in recorded[0].payload  # no link from resident to response

    # A resident event that notify could not take waits in a dead-letter queue: it expires.
    poison = make_envelope(
        "resident_updated",
        {
            "resident_id": resident_id,
            "municipality_code": UTRECHT,
            "buurt_code": "BU03440111",
            "wijk_code": "WK034401",
            "language": "nl",
            "self_selected": False,
            "consent": True,
            "updated_at": "2026-12-05T12:00:00+00:00",
        },
    )
    poison["payload"]["language"] = "klingon"  # fails the catalogue: dead-lettered at once
    publish_raw(amqp_uri, "panel", "resident_updated", poison)
    dlq = dlq_name("evt-panel-resident_updated--notify.on_resident_updated")
    wait_for(
        lambda: dlq in infra.dead_letter_queues_holding(amqp_uri, resident_id),
        message="the poisoned event dead-lettered",
    )
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        message = channel.basic_get(dlq, no_ack=False)
        assert message.properties["expiration"] == str(14 * 24 * 3600 * 1000)
        channel.basic_reject(message.delivery_tag, requeue=False)  # as if it had expired

    assert api.request("DELETE", "/api/v1/me", token=token).status_code == 204
    for service in ("panel", "notify", "responses", "feedback"):
        wait_for(
            lambda s=service: (
                not infra.tables_holding(engines[s], resident_id) and unpublished(engines[s]) == 0
            ),
            timeout=20,
            message=f"{service} holding nothing on the resident",
        )
    for service, engine in engines.items():
        assert infra.tables_holding(engine, resident_id) == [], service
    assert infra.dead_letter_queues_holding(amqp_uri, resident_id) == []
    shared = redis.Redis.from_url(REDIS_URL)
    assert [k for k in shared.scan_iter(match=f"{redis_prefix}*") if resident_id in str(k)] == []


def test_dead_letters_holding_personal_data_expire(container_factory, service_config, amqp_uri):
    """A resident event (personal) dead-letters with the retention as its TTL and is gone after
    it; a poll event (not personal) is kept until replayed or purged."""

    class Failing:
        name = "failing"

        @event_handler("panel", "resident_left")
        def on_left(self, event):
            raise RuntimeError("cannot")

        @event_handler("polls", "poll_closed")
        def on_closed(self, event):
            raise RuntimeError("cannot")

    config = service_config("notify", MAX_ATTEMPTS=1, DEAD_LETTER_RETENTION=3)
    container_factory(Failing, config).start()
    resident_id, poll_id = str(uuid.uuid4()), str(uuid.uuid4())
    publish_raw(
        amqp_uri,
        "panel",
        "resident_left",
        make_envelope(
            "resident_left",
            {"resident_id": resident_id, "municipality_code": UTRECHT, "left_at": now()},
        ),
    )
    publish_raw(
        amqp_uri,
        "polls",
        "poll_closed",
        make_envelope(
            "poll_closed",
            {
                "poll_id": poll_id,
                "municipality_code": UTRECHT,
                "closed_at": now(),
                "reason": "manual",
            },
        ),
    )
    personal = dlq_name("evt-panel-resident_left--failing.on_left")
    other = dlq_name("evt-polls-poll_closed--failing.on_closed")
    expirations = {}

    def dead_lettered():
        with Connection(amqp_uri) as conn:
            channel = conn.channel()
            for queue in (personal, other):
                if queue in expirations:
                    continue
                try:
                    message = channel.basic_get(queue, no_ack=False)
                except Exception:  # noqa: BLE001 - not declared yet
                    return False
                if message is not None:
                    expirations[queue] = message.properties.get("expiration")
                    channel.basic_reject(message.delivery_tag, requeue=True)
        return len(expirations) == 2

    wait_for(dead_lettered, message="both events dead-lettered")
    assert expirations == {personal: "3000", other: None}
    wait_for(
        lambda: infra.dead_letter_queues_holding(amqp_uri, resident_id) == [],
        timeout=15,
        message="the personal dead letter expiring",
    )
    assert infra.dead_letter_queues_holding(amqp_uri, poll_id) == [other]


def now() -> str:
    return datetime.now(UTC).isoformat()
