"""The event catalogue in code and in docs/events.md say the same thing."""

import re
import uuid
from pathlib import Path

import pytest

from services.common.events import (
    CATALOGUE,
    EventValidationError,
    make_envelope,
    parse_envelope,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text(encoding="utf-8")


def documented_events():
    """Rows of the catalogue table: | `name` | version | source | ..."""
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| (\w+) \|", DOC, flags=re.M)
    return {name: (int(version), source) for name, version, source in rows}


def test_every_event_is_documented_with_its_version_and_source():
    documented = documented_events()
    assert documented == {e.name: (e.version, e.source) for e in CATALOGUE.values()}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_payload_field_is_documented(name):
    section = DOC.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
    for field in CATALOGUE[name].schema().fields:
        assert f"`{field}`" in section, f"{name}.{field} is not described in docs/events.md"


def closed(**overrides):
    payload = {
        "poll_id": str(uuid.uuid4()),
        "municipality_code": "GM0344",
        "closed_at": "2026-11-25T10:00:00+00:00",
        "reason": "schedule",
    }
    return {**payload, **overrides}


def test_envelope_round_trip():
    envelope = make_envelope("poll_closed", closed(), correlation_id="abc")
    event = parse_envelope(envelope, expected="poll_closed")
    assert str(event.id) == envelope["event_id"]
    assert (event.name, event.version, event.source) == ("poll_closed", 1, "polls")
    assert event.correlation_id == "abc"


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda e: e.update(event="poll_exploded"), "unknown event"),
        (lambda e: e.update(version=2), "not in the catalogue"),
        (lambda e: e.update(source="panel"), "not in the catalogue"),
        (lambda e: e["payload"].update(reason="boredom"), "reason"),
        (lambda e: e["payload"].pop("poll_id"), "poll_id"),
        (lambda e: e.pop("event_id"), "event_id"),
    ],
)
def test_consumers_refuse_what_does_not_match_the_catalogue(mutate, fragment):
    envelope = make_envelope("poll_closed", closed())
    mutate(envelope)
    with pytest.raises(EventValidationError, match=fragment):
        parse_envelope(envelope)


def test_publishers_cannot_write_an_invalid_payload():
    with pytest.raises(EventValidationError, match="municipality_code"):
        make_envelope("poll_closed", closed(municipality_code="Utrecht"))


def test_poll_published_carries_a_valid_poll_definition():
    from services.polls.library import get_template

    payload = {
        "poll_id": str(uuid.uuid4()),
        "municipality_code": "GM0344",
        "version": 1,
        "content_hash": "0" * 64,
        "template_id": None,
        "definition": get_template("afval")["definition"],
        "audience": {"kind": "municipality", "area_codes": []},
        "opens_at": "2026-11-25T10:00:00+00:00",
        "closes_at": None,
        "reminder_after_hours": [],
        "published_at": "2026-11-25T10:00:00+00:00",
    }
    make_envelope("poll_published", payload)
    payload["definition"]["questions"][0]["type"] = "essay"
    with pytest.raises(EventValidationError, match="definition"):
        make_envelope("poll_published", payload)
