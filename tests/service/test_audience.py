"""Who may answer a poll, and where the answer counts (issue 15 items 5 and 14), through HTTP
with every service running: a sample is open to its drawn residents only; an invited resident
who moves still answers, counted where they were invited and flagged recently moved."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.audience import invited, listed, publish, submit
from tests.support.panel import UTRECHT, profile, utrecht_files


@pytest.fixture
def town(api, service_config):
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    return {"admin": api.staff_token(UTRECHT, "admin")}


def join(api, admin, n, wijk="WK034401", buurt="BU03440111"):
    """``n`` residents of ``buurt`` joined with letter codes: (resident id, session) each."""
    batch = api.request(
        "POST", "/admin/v1/invitation-batches", token=admin, json={"per_wijk": {wijk: n}}
    ).json()
    joined = []
    for line in batch["csv"].splitlines()[1:]:
        session = api.request(
            "POST",
            "/api/v1/join",
            json={"invitation_code": line.split(",")[0], **profile(buurt_code=buurt)},
        )
        assert session.status_code == 201, session.text
        body = session.json()
        me = api.request("GET", "/api/v1/me", token=body["access_token"]).json()
        joined.append((me["resident_id"], body))
    return joined


def recorded(api, token, sent):
    receipt = sent.json()["receipt_id"]
    return (
        api.request("GET", f"/api/v1/receipts/{receipt}", token=token).json()["status"]
        == "recorded"
    )


def test_a_sample_poll_is_answered_by_its_drawn_residents_and_no_one_else(api, town, engines):
    residents = join(api, town["admin"], 5)
    poll_id = publish(
        api, town["admin"], {"kind": "sample", "area_codes": ["WK034401"], "sample_size": 2}
    )
    drawn = wait_for(
        lambda: (found := invited(engines["notify"], poll_id)) and len(found) == 2 and found,
        message="notify drawing the sample",
    )
    answers = None
    for resident_id, session in residents:
        token = session["access_token"]
        if resident_id in drawn:
            wait_for(
                lambda t=token: listed(api, t) == [poll_id],
                interval=0.3,  # within the per-token rate limit
                message="the sample poll listed for a drawn resident",
            )
            shown = api.request("GET", f"/api/v1/polls/{poll_id}", token=token)
            assert shown.status_code == 200, shown.text
            answers = minimal_answers(shown.json()["definition"])
            sent = submit(api, token, poll_id, answers)
            assert sent.status_code == 202, sent.text
            wait_for(lambda t=token, s=sent: recorded(api, t, s), message="the answer recorded")
    assert answers is not None
    for resident_id, session in residents:
        if resident_id in drawn:
            continue
        token = session["access_token"]
        assert listed(api, token) == []
        assert api.request("GET", f"/api/v1/polls/{poll_id}", token=token).status_code == 404
        refused = submit(api, token, poll_id, answers)
        assert refused.status_code == 404, refused.text
    with engines["responses"].connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM responses WHERE poll_id = :p"), {"p": poll_id}
            ).scalar()
            == 2
        )


def test_an_answer_counts_where_its_resident_was_invited_after_a_move(api, town, engines):
    (mover, mover_session), (stayer, stayer_session) = join(api, town["admin"], 2)
    poll_id = publish(api, town["admin"], {"kind": "areas", "area_codes": ["WK034401"]})
    wait_for(
        lambda: invited(engines["notify"], poll_id) == {mover, stayer},
        message="the invitations",
    )
    moved = api.request(
        "PATCH",
        "/api/v1/me",
        token=mover_session["access_token"],
        json={"buurt_code": "BU03440311"},  # to wijk WK034403, outside the audience
    )
    assert moved.status_code == 200 and moved.json()["wijk_code"] == "WK034403", moved.text
    token = api.request(
        "POST", "/api/v1/token/refresh", json={"refresh_token": mover_session["refresh_token"]}
    ).json()["access_token"]  # claims of the new buurt
    shown = wait_for(
        lambda: (
            (r := api.request("GET", f"/api/v1/polls/{poll_id}", token=token)).status_code == 200
            and r
        ),
        interval=0.3,
        message="the poll for the invited resident who moved",
    )
    answers = minimal_answers(shown.json()["definition"])
    for t in (token, stayer_session["access_token"]):
        sent = submit(api, t, poll_id, answers)
        assert sent.status_code == 202, sent.text
        wait_for(lambda t=t, s=sent: recorded(api, t, s), message="the answer recorded")
    with engines["responses"].connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT wijk_code, buurt_code, recently_moved FROM responses WHERE poll_id = :p"
            ),
            {"p": poll_id},
        ).all()
    # Both count in the buurt they were invited in; the one who moved is flagged.
    assert sorted(tuple(r) for r in rows) == [
        ("WK034401", "BU03440111", False),
        ("WK034401", "BU03440111", True),
    ]
