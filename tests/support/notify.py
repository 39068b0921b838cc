"""Helpers for notify tests: residents in notify's projection, and events as the other
services publish them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.common.amqp import ConfirmingPublisher, events_exchange
from services.common.events import event_type, make_envelope
from services.polls.library import get_template

GM = "GM0344"


def add_resident(
    engine: sa.Engine,
    push: Any,
    *,
    wijk: str = "WK034401",
    buurt: str | None = None,
    consent: bool = True,
    language: str = "nl",
    quiet_hours: dict | None = None,
    subscribe: bool = True,
) -> dict[str, Any]:
    """A resident in notify's projection with a Web Push subscription at the fake service."""
    rid = uuid.uuid4()
    buurt = buurt or f"BU{wijk[2:]}11"
    now = datetime.now(UTC)
    subscription = push.subscribe() if subscribe else None
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO residents (id, municipality_code, wijk_code, buurt_code, language, "
                "consent, channel_order, quiet_hours, updated_at) VALUES (:id, :m, :w, :b, :l, :c, "
                '\'["webpush", "fcm", "email"]\', CAST(:q AS jsonb), :now)'
            ),
            {
                "id": rid,
                "m": GM,
                "w": wijk,
                "b": buurt,
                "l": language,
                "c": consent,
                "q": None if quiet_hours is None else __import__("json").dumps(quiet_hours),
                "now": now,
            },
        )
        if subscription:
            conn.execute(
                sa.text(
                    "INSERT INTO endpoints (id, resident_id, channel, address, p256dh, auth, "
                    "created_at) VALUES (:id, :r, 'webpush', :a, :p, :k, :now)"
                ),
                {
                    "id": uuid.uuid4(),
                    "r": rid,
                    "a": subscription["endpoint"],
                    "p": subscription["keys"]["p256dh"],
                    "k": subscription["keys"]["auth"],
                    "now": now,
                },
            )
    return {"id": str(rid), "wijk": wijk, "subscription": subscription}


def add_device(engine: sa.Engine, push: Any, resident_id: str) -> dict[str, Any]:
    """Another Web Push subscription of the resident (a second phone, a laptop)."""
    subscription = push.subscribe()
    device_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO endpoints (id, resident_id, channel, address, p256dh, auth, "
                "created_at) VALUES (:id, :r, 'webpush', :a, :p, :k, now())"
            ),
            {
                "id": device_id,
                "r": resident_id,
                "a": subscription["endpoint"],
                "p": subscription["keys"]["p256dh"],
                "k": subscription["keys"]["auth"],
            },
        )
    return {**subscription, "device_id": str(device_id)}


def publish_event(amqp_uri: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    envelope = make_envelope(name, payload)
    spec = event_type(name)
    publisher = ConfirmingPublisher(amqp_uri)
    exchange = events_exchange(spec.source)
    publisher.publish(envelope, exchange=exchange, routing_key=name, declare=[exchange])
    publisher.close()
    return envelope


def poll_payload(
    *,
    audience: dict[str, Any],
    opens_hours_ago: float = 0,
    reminders: list[int] | None = None,
    template: str = "veiligheidsgevoel",
    closes_in_days: float = 14,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "poll_id": str(uuid.uuid4()),
        "municipality_code": GM,
        "version": 1,
        "content_hash": "a" * 64,
        "template_id": template,
        "definition": get_template(template)["definition"],
        "audience": {"area_codes": [], **audience},
        "opens_at": (now - timedelta(hours=opens_hours_ago)).isoformat(),
        "closes_at": (now + timedelta(days=closes_in_days)).isoformat(),
        "reminder_after_hours": reminders or [],
        "published_at": now.isoformat(),
    }


def wait_for_consumer(amqp_uri: str, queue: str, timeout: float = 60) -> None:
    """Until ``queue`` exists and has a consumer (a service in another process is up)."""
    import time

    from kombu import Connection
    from kombu.exceptions import ChannelError

    deadline = time.monotonic() + timeout
    with Connection(amqp_uri) as conn:
        while time.monotonic() < deadline:
            try:
                if conn.channel().queue_declare(queue, passive=True)[2]:
                    return
            except ChannelError:
                pass
            time.sleep(0.2)
    raise AssertionError(f"nothing consumes {queue} after {timeout} s")


def panel_without_quiet_hours(container_factory: Any, service_config: Any) -> None:
    """panel running, with GM's quiet hours off. Without it notify falls back to the default
    quiet hours (21:00–08:00) and holds every push of a test run in the evening until morning."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from services.panel.service import PanelService

    panel = service_config("panel")
    container_factory(PanelService, panel).start()
    with ClusterRpcProxy(panel) as rpc:
        rpc.panel.create_municipality(
            {"code": GM, "name": "Utrecht", "settings": {"quiet_hours": None}}
        )


def shift_opening(engine: sa.Engine, poll_id: str, *, hours: float) -> None:
    """Time passes for the poll in notify: its opening moves back, so reminders fall due."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE polls SET opens_at = opens_at - make_interval(hours => :h) WHERE id = :p"
            ),
            {"h": hours, "p": poll_id},
        )
