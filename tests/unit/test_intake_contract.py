"""The intake contract (services/common/intake.py): what the gateway builds is what responses
accepts; what can never be recorded is refused with a reason (and dead-lettered)."""

import uuid
from datetime import UTC, datetime

import pytest

from services.common.intake import SUBMISSION_VERSION, malformed, submission


def built(**resident_changes):
    return submission(
        receipt_id=str(uuid.uuid4()),
        poll_id=str(uuid.uuid4()),
        answers={"veilig": 4, "plekken": ["park"]},
        submitted_at=datetime.now(UTC),
        resident={
            "id": str(uuid.uuid4()),
            "municipality_code": "GM0344",
            "wijk_code": "WK034401",
            "buurt_code": "BU03440111",
            "recently_moved": False,
            "age_band": "25_44",
            "sex": None,
            "self_selected": False,
            **resident_changes,
        },
    )


def test_what_the_gateway_builds_fits_the_contract():
    body = built()
    assert body["version"] == SUBMISSION_VERSION == 1
    assert malformed(body) is None


def test_messages_queued_before_version_and_recently_moved_existed_are_accepted():
    body = built()
    del body["version"], body["resident"]["recently_moved"]
    del body["resident"]["age_band"], body["resident"]["sex"], body["resident"]["self_selected"]
    assert malformed(body) is None


def test_fields_added_compatibly_are_ignored():
    body = built(postcode_hint="3511")
    body["route_hint"] = "app"
    assert malformed(body) is None


def test_channel_and_kind_are_optional_and_default_to_the_app_and_a_resident():
    body = built(kind="ondernemer")
    assert body["channel"] == "app" and malformed(body) is None
    del body["channel"], body["resident"]["kind"]
    assert malformed(body) is None
    for channel in ("app", "link", "paper"):
        assert malformed({**built(kind="organisatie"), "channel": channel}) is None


def test_an_unknown_channel_or_kind_is_refused():
    assert "channel" in (malformed({**built(), "channel": "fax"}) or "")
    assert "kind" in (malformed(built(kind="bewoner")) or "")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("receipt_id"), "receipt_id"),
        (lambda b: b.pop("answers"), "answers"),
        (lambda b: b.update(answers=["veilig"]), "answers"),
        (lambda b: b.update(poll_id="nope"), "poll_id"),
        (lambda b: b.update(submitted_at="yesterday"), "submitted_at"),
        (lambda b: b.update(submitted_at=12), "submitted_at"),
        (lambda b: b.update(version=2), "version"),
        (lambda b: b.update(resident="someone"), "resident"),
        (lambda b: b["resident"].update(id=""), "resident"),
        (lambda b: b["resident"].update(buurt_code=""), "resident"),
        (lambda b: b["resident"].pop("municipality_code"), "resident"),
    ],
)
def test_what_can_never_be_recorded_is_refused_with_the_field(change, field):
    body = built()
    change(body)
    reason = malformed(body)
    assert reason is not None and reason.startswith(f"{field}:")


@pytest.mark.parametrize("body", [None, [], "{}", 42, {"receipt_id": "nope"}])
def test_anything_but_a_submission_is_refused(body):
    assert malformed(body)
