"""The polls service in a real nameko container, on the real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.common.errors import Conflict, InvalidInput, NotFound
from services.polls.service import PollsService
from tests.conftest import wait_for
from tests.support.listeners import recorder

GM = "GM0344"


@pytest.fixture
def polls(container_factory, service_config):
    config = service_config("polls", SCHEDULE_INTERVAL=0.2, OUTBOX_POLL_INTERVAL=0.1)
    container = container_factory(PollsService, config)
    container.start()
    with ServiceRpcProxy("polls", config) as proxy:
        yield proxy, config


@pytest.fixture
def events(container_factory, service_config):
    cls, received = recorder("polls", "poll_published", "poll_closed")
    container = container_factory(cls, service_config("polls"))
    container.start()
    return received


def test_templates_are_listed_by_theme(polls):
    proxy, _ = polls
    templates = proxy.list_templates()
    assert len(templates) >= 12
    safety = proxy.list_templates("veiligheidsgevoel")
    assert [t["id"] for t in safety] == ["veiligheidsgevoel"]
    full = proxy.get_template("veiligheidsgevoel")
    assert full["definition"]["questions"][0]["id"] == "veilig_buurt"
    with pytest.raises(NotFound):
        proxy.get_template("bestaat_niet")


def test_publish_emits_poll_published_exactly_once(polls, events):
    proxy, _ = polls
    poll = proxy.create_poll(
        GM,
        {
            "template_id": "veiligheidsgevoel",
            "audience": {"kind": "areas", "area_codes": ["WK034401"]},
        },
    )
    assert poll["status"] == "draft"
    first = proxy.publish_poll(GM, poll["id"])
    again = proxy.publish_poll(GM, poll["id"])
    assert first["status"] == again["status"] == "open"
    assert first["content_hash"] == again["content_hash"]

    wait_for(lambda: events, message="poll_published")
    closed = proxy.close_poll(GM, poll["id"])
    proxy.close_poll(GM, poll["id"])
    assert closed["status"] == "closed"
    wait_for(lambda: len(events) >= 2, message="poll_closed")
    import time

    time.sleep(0.5)  # give a duplicate, if there were one, time to arrive
    assert [e.name for e in events] == ["poll_published", "poll_closed"]
    published = events[0].payload
    assert published["poll_id"] == poll["id"]
    assert published["content_hash"] == first["content_hash"]
    assert published["audience"]["area_codes"] == ["WK034401"]
    assert published["definition"]["theme"] == "veiligheidsgevoel"
    assert events[1].payload["reason"] == "manual"


def test_scheduled_poll_opens_and_closes_on_time(polls, events):
    proxy, _ = polls
    now = datetime.now(UTC)
    poll = proxy.create_poll(
        GM,
        {
            "template_id": "verlichting",
            "opens_at": (now + timedelta(seconds=1)).isoformat(),
            "closes_at": (now + timedelta(seconds=2.5)).isoformat(),
        },
    )
    assert proxy.publish_poll(GM, poll["id"])["status"] == "scheduled"
    wait_for(
        lambda: any(e.name == "poll_published" for e in events),
        timeout=10,
        message="scheduled opening",
    )
    assert datetime.now(UTC) >= now + timedelta(seconds=1)
    wait_for(
        lambda: any(e.name == "poll_closed" for e in events),
        timeout=10,
        message="scheduled closing",
    )
    assert events[-1].payload["reason"] == "schedule"
    assert proxy.get_poll(GM, poll["id"])["status"] == "closed"


def test_bad_input_is_refused_field_by_field(polls):
    proxy, _ = polls
    with pytest.raises(InvalidInput) as err:
        proxy.create_poll(
            GM,
            {
                "template_id": "veiligheidsgevoel",
                "audience": {"kind": "areas", "area_codes": ["WK036301"]},
            },
        )
    assert err.value.errors[0]["field"] == "audience.area_codes[0]"

    definition = proxy.get_template("groen")["definition"]
    definition["questions"][0]["type"] = "essay"
    with pytest.raises(InvalidInput) as err:
        proxy.create_poll(GM, {"definition": definition})
    assert err.value.errors[0]["field"].startswith("definition.questions[0]")

    with pytest.raises(InvalidInput) as err:
        proxy.create_poll(GM, {"template_id": "groen", "closes_at": "gisteren"})
    assert [e["field"] for e in err.value.errors] == ["closes_at"]

    with pytest.raises(InvalidInput) as err:
        proxy.create_poll(GM, ["not", "an", "object"])
    assert err.value.errors[0]["field"] == "body"


def test_published_poll_is_frozen_and_tenants_are_isolated(polls):
    proxy, _ = polls
    poll = proxy.create_poll(GM, {"template_id": "afval"})
    edited = proxy.update_poll(
        GM, poll["id"], {"reminder_after_hours": [48]}, expected_version=poll["version"]
    )
    assert edited["version"] == poll["version"] + 1
    with pytest.raises(Conflict):  # stale version
        proxy.update_poll(
            GM, poll["id"], {"reminder_after_hours": [24]}, expected_version=poll["version"]
        )
    proxy.publish_poll(GM, poll["id"])
    with pytest.raises(Conflict) as err:
        proxy.update_poll(GM, poll["id"], {"reminder_after_hours": [24]})
    assert "frozen" in str(err.value)

    # Another municipality sees nothing: not the poll, not in lists, cannot act on it.
    for call in (proxy.get_poll, proxy.publish_poll, proxy.close_poll):
        with pytest.raises(NotFound):
            call("GM0363", poll["id"])
    assert proxy.list_polls("GM0363") == []
    assert [p["id"] for p in proxy.list_polls(GM, "open")] == [poll["id"]]
    with pytest.raises(NotFound):
        proxy.get_poll(GM, "not-a-uuid")
