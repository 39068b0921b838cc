"""A series of polls over real HTTP (issue 13): the next wave of a published poll, the checks
on what may change, and the trend between the waves with a significant change in one wijk."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import sessionmaker

from services.common.db import run_in_transaction
from services.common.outbox import add_events
from services.common.pollspec import visible_questions
from services.responses import intake
from tests.conftest import wait_for
from tests.support.answers import minimal_answer
from tests.support.openapi import assert_documented
from tests.support.panel import UTRECHT, utrecht_files

BUURTEN = ("BU03440111", "BU03440112", "BU03440113", "BU03440114")  # all in wijk 01 (West)


@pytest.fixture
def admin(api, service_config):
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    return api.staff_token(UTRECHT, "admin")


def answers(definition, often):
    """Every required question answered, ``vaak_onveilig`` as given."""
    given = {}
    for q in definition["questions"]:
        if q["id"] not in visible_questions(definition, given):
            continue
        if q["id"] == "vaak_onveilig":
            given[q["id"]] = often
        elif q.get("required", True):
            given[q["id"]] = minimal_answer(q)
    return given


def record(engines, poll, share_often, seed):
    """50 respondents per buurt of West; ``share_often`` of them feel unsafe often."""
    rng = random.Random(seed)
    batch = []
    for buurt in BUURTEN:
        for i in range(50):
            often = "vaak" if i < 50 * share_often else "bijna_nooit"
            batch.append(
                {
                    "receipt_id": str(uuid.uuid4()),
                    "poll_id": poll["id"],
                    "resident": {
                        "id": str(uuid.uuid4()),
                        "municipality_code": UTRECHT,
                        "wijk_code": f"WK{buurt[2:8]}",
                        "buurt_code": buurt,
                        "age_band": rng.choice(("25_44", "45_64", "65_plus")),
                        "sex": rng.choice(("man", "vrouw")),
                        "self_selected": False,
                    },
                    "answers": answers(poll["definition"], often),
                    "submitted_at": datetime.now(UTC).isoformat(),
                }
            )
    sessions = sessionmaker(engines["responses"], expire_on_commit=False)
    run_in_transaction(
        sessions,
        lambda s: intake.record_batch(
            s, batch, secret=b"s", emit_many=add_events, today=lambda: datetime.now(UTC)
        ),
    )


def published(api, admin, engines, body):
    created = api.request("POST", "/admin/v1/polls", token=admin, json=body)
    assert created.status_code == 201, created.text
    poll = created.json()
    response = api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)
    assert response.status_code == 200, response.text

    def known() -> bool:
        with engines["responses"].connect() as conn:
            return bool(
                conn.execute(
                    sa.text("SELECT count(*) FROM polls WHERE id = :p"), {"p": poll["id"]}
                ).scalar()
            )

    wait_for(known, timeout=30, message="responses to know the poll")
    return response.json()


@pytest.mark.service
def test_two_waves_show_a_significant_fall_in_one_wijk(api, admin, engines):
    first = published(api, admin, engines, {"template_id": "veiligheidsgevoel"})
    assert first["wave"] == 1 and first["previous_poll_id"] is None
    record(engines, first, 0.3, 1)
    # Changing the options of a compared question is refused; wording may change.
    definition = first["definition"]
    changed = {
        **definition,
        "questions": [
            {**q, "options": q["options"][:2]} if q["id"] == "vaak_onveilig" else q
            for q in definition["questions"]
        ],
    }
    refused = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={"previous_poll_id": first["id"], "definition": changed},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["code"] == "changed_in_series"
    second = published(api, admin, engines, {"previous_poll_id": first["id"]})
    assert (second["wave"], second["previous_poll_id"]) == (2, first["id"])
    record(engines, second, 0.1, 2)

    # The waves' first releases may take longer than a read waits: 503 (being computed) until
    # they are done, as for results.
    def read_trend():
        response = api.request("GET", f"/admin/v1/polls/{second['id']}/trend", token=admin)
        assert response.status_code in (200, 503), response.text
        return response.json() if response.status_code == 200 else None

    trend = wait_for(read_trend, timeout=60, message="both waves released")
    # Sent as the service built it (not projected per request): the document must describe it.
    assert_documented(api, "GET", "/admin/v1/polls/{poll_id}/trend", trend)
    assert [w["wave"] for w in trend["waves"]] == [1, 2]
    often = next(q for q in trend["questions"] if q["id"] == "vaak_onveilig")
    west = often["areas"]["WK034401"]
    shares = [
        next(o for o in w["options"] if o["option"] == "vaak")["weighted_percent"]
        for w in west["waves"]
    ]
    assert shares[0] > 20 and shares[1] < 15
    (step,) = west["changes"]
    vaak = next(o for o in step["options"] if o["option"] == "vaak")
    assert vaak["significant"] is True and vaak["ci_high"] < 0
    assert vaak["change"] == round(shares[1] - shares[0], 1)
    # A wijk where nobody answered has no change to show.
    north = often["areas"]["WK034402"]
    assert all(o["significant"] in (None, False) for o in north["changes"][0]["options"])


@pytest.mark.service
def test_only_one_published_poll_follows_a_wave_and_a_withdrawn_one_does_not_count(
    api, admin, engines
):
    """Regression: nothing stopped two polls following the same wave, though a series is
    linear (the trend compares consecutive waves). Now a next wave of a wave that a published
    poll already follows is refused, 409 ``wave_already_followed`` naming that poll, when it
    is created and when it is published; drafts do not block (they cannot be deleted), nor
    does a poll withdrawn before it opened (scheduled, then closed)."""
    first = published(api, admin, engines, {"template_id": "veiligheidsgevoel"})
    second = published(api, admin, engines, {"previous_poll_id": first["id"]})

    def create(previous):
        return api.request(
            "POST", "/admin/v1/polls", token=admin, json={"previous_poll_id": previous["id"]}
        )

    def refused_for(response, taken):
        assert response.status_code == 409, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        (error,) = response.json()["errors"]
        assert (error["field"], error["code"], error["poll_id"]) == (
            "previous_poll_id",
            "wave_already_followed",
            taken["id"],
        )
        assert taken["id"] in response.json()["detail"]

    refused_for(create(first), second)

    # Two drafts following wave 2: the first published wins, the other is refused.
    third, fork = create(second).json(), create(second).json()
    publish = api.request("POST", f"/admin/v1/polls/{third['id']}/publish", token=admin)
    assert publish.status_code == 200, publish.text
    refused_for(api.request("POST", f"/admin/v1/polls/{fork['id']}/publish", token=admin), third)
    assert api.request("GET", f"/admin/v1/polls/{fork['id']}", token=admin).json()["status"] == (
        "draft"
    )
    refused_for(create(second), third)

    # Wave 4 scheduled and then closed before it opened: withdrawn, it blocks nothing.
    later = datetime.now(UTC) + timedelta(days=2)
    withdrawn = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={
            "previous_poll_id": third["id"],
            "opens_at": later.isoformat(),
            "closes_at": (later + timedelta(days=7)).isoformat(),
        },
    ).json()
    scheduled = api.request("POST", f"/admin/v1/polls/{withdrawn['id']}/publish", token=admin)
    assert scheduled.json()["status"] == "scheduled", scheduled.text
    refused_for(create(third), withdrawn)  # while scheduled it follows wave 3
    closed = api.request("POST", f"/admin/v1/polls/{withdrawn['id']}/close", token=admin)
    assert closed.json()["status"] == "closed", closed.text
    fourth = published(api, admin, engines, {"previous_poll_id": third["id"]})
    assert fourth["wave"] == 4
    refused_for(create(third), fourth)


@pytest.mark.service
def test_the_series_lists_every_wave_in_order_from_any_of_them(api, admin, engines):
    first = published(api, admin, engines, {"template_id": "veiligheidsgevoel"})
    alone = api.request("GET", f"/admin/v1/polls/{first['id']}/series", token=admin)
    assert alone.status_code == 200, alone.text
    assert [w["poll_id"] for w in alone.json()["waves"]] == [first["id"]]
    second = published(api, admin, engines, {"previous_poll_id": first["id"]})
    # A third wave still being written is part of the series too.
    third = api.request(
        "POST", "/admin/v1/polls", token=admin, json={"previous_poll_id": second["id"]}
    ).json()
    # Two drafts may follow the same wave (only one of them can be published): both listed.
    fork = api.request(
        "POST", "/admin/v1/polls", token=admin, json={"previous_poll_id": second["id"]}
    ).json()

    viewer = api.staff_token(UTRECHT, "viewer")
    found = {}
    for poll in (first, second, third, fork):
        response = api.request("GET", f"/admin/v1/polls/{poll['id']}/series", token=viewer)
        assert response.status_code == 200, response.text
        found[poll["id"]] = response.json()
    series = found[first["id"]]
    assert all(found[p["id"]] == series for p in (second, third, fork))
    assert_documented(api, "GET", "/admin/v1/polls/{poll_id}/series", series)
    assert [
        (w["poll_id"], w["wave"], w["previous_poll_id"], w["status"]) for w in series["waves"]
    ] == [
        (first["id"], 1, None, "open"),
        (second["id"], 2, first["id"], "open"),
        (third["id"], 3, second["id"], "draft"),
        (fork["id"], 3, second["id"], "draft"),
    ]
    one = series["waves"][0]
    assert one["title"] == first["definition"]["title"]
    assert (one["opens_at"], one["closes_at"]) == (first["opens_at"], first["closes_at"])
    assert series["waves"][2]["opens_at"] is None

    # Another municipality's staff: 404, as for a poll that does not exist.
    elsewhere = api.staff_token("GM0307", "admin")
    theirs = api.request("GET", f"/admin/v1/polls/{first['id']}/series", token=elsewhere)
    assert theirs.status_code == 404, theirs.text
    assert theirs.headers["Content-Type"] == "application/problem+json"
    unknown = api.request("GET", f"/admin/v1/polls/{uuid.uuid4()}/series", token=admin)
    assert unknown.status_code == 404, unknown.text
    assert api.request("GET", f"/admin/v1/polls/{first['id']}/series").status_code == 401
