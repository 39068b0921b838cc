"""Closing the loop over HTTP: staff publish feedback on a closed poll through the gateway, the
residents who answered get it pushed (the fake push service checks VAPID and decrypts), they
read it and react, measure updates are pushed again, and the public timeline is cacheable.

Everything runs in real containers (polls, panel, responses, notify, feedback, gateway) on the
real broker and databases; only the push service is a fake.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.audience import register_device
from tests.support.feedback import (
    add_measure,
    close,
    draft,
    feedback_id_of,
    measure_id_of,
    messages,
    publish,
    save_draft,
)
from tests.support.gateway import resident_token
from tests.support.panel import UTRECHT, profile, utrecht_files

AMERSFOORT = "GM0307"
PROBLEM = "application/problem+json"
WEST = "WK034401"
OOST = "WK034403"
HOME_BUURT = "BU03440111"  # in West


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def town(api, service_config):
    """Utrecht (no quiet hours, so a measure update is not deferred to the morning) with its
    real CBS areas, Amersfoort for isolation, and staff tokens."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality(
            {"code": UTRECHT, "name": "Utrecht", "settings": {"quiet_hours": None}}
        )
        rpc.panel.import_areas(UTRECHT, utrecht_files())
        rpc.panel.create_municipality({"code": AMERSFOORT, "name": "Amersfoort"})
    return {
        "editor": api.staff_token(UTRECHT, "editor"),
        "viewer": api.staff_token(UTRECHT, "viewer"),
        "amersfoort": api.staff_token(AMERSFOORT, "admin"),
    }


def open_poll(api, token, area_codes=None, template="veiligheidsgevoel"):
    audience = (
        {"kind": "areas", "area_codes": area_codes} if area_codes else {"kind": "municipality"}
    )
    poll = api.request(
        "POST", "/admin/v1/polls", token=token, json={"template_id": template, "audience": audience}
    )
    assert poll.status_code == 201, poll.text
    published = api.request("POST", f"/admin/v1/polls/{poll.json()['id']}/publish", token=token)
    assert published.json()["status"] == "open", published.text
    return poll.json()


# --- 1. the loop closes ----------------------------------------------------------------------


def test_published_feedback_and_measure_updates_reach_exactly_those_who_answered(
    api, town, push_service, engines
):
    editor = town["editor"]
    batch = api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=api.staff_token(UTRECHT, "admin"),
        json={"per_wijk": {WEST: 4}},
    ).json()
    codes = [line.split(",")[0] for line in batch["csv"].splitlines()[1:]]
    residents = []
    for code in codes:
        session = api.request("POST", "/api/v1/join", json={"invitation_code": code, **profile()})
        assert session.status_code == 201, session.text
        token = session.json()["access_token"]
        subscription = register_device(api, push_service, token)
        residents.append(
            {
                "id": session.json()["resident"]["resident_id"],
                "token": token,
                "subscription": subscription,
            }
        )

    def known_to_notify():
        with engines["notify"].connect() as conn:
            return conn.execute(
                sa.text("SELECT count(*) FROM residents WHERE id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": [r["id"] for r in residents]},
            ).scalar() == len(residents)

    wait_for(known_to_notify, message="resident_joined reaching notify")

    poll = open_poll(api, editor, [WEST])
    for resident in residents:
        wait_for(
            lambda r=resident: messages(push_service, r["subscription"], "invitation"),
            timeout=15,
            message="the invitation",
        )
    answered, silent = residents[:2], residents[2:]
    definition = api.request(
        "GET", f"/api/v1/polls/{poll['id']}", token=answered[0]["token"]
    ).json()["definition"]
    for resident in answered:
        sent = api.request(
            "POST",
            f"/api/v1/polls/{poll['id']}/responses",
            token=resident["token"],
            json={"answers": minimal_answers(definition)},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert sent.status_code == 202, sent.text

    def answers_known_to_notify():
        with engines["notify"].connect() as conn:
            return conn.execute(
                sa.text("SELECT count(*) FROM invitations WHERE poll_id = :p AND answered"),
                {"p": poll["id"]},
            ).scalar() == len(answered)

    wait_for(answers_known_to_notify, timeout=20, message="response_recorded reaching notify")
    close(api, editor, poll["id"])

    title = "Meer licht op de fietspaden in West"
    saved = save_draft(api, editor, poll["id"], draft(title))
    assert saved["status"] == "draft" and saved["title"] == title
    measure = add_measure(api, editor, poll["id"], "Lantaarns langs het Zuilenpad")
    view = publish(api, editor, poll["id"])
    assert view["status"] == "published" and view["title"] == title

    for resident in answered:
        wait_for(
            lambda r=resident: messages(push_service, r["subscription"], "feedback"),
            timeout=15,
            message="the feedback notification",
        )
        (pushed,) = messages(push_service, resident["subscription"], "feedback")
        assert title in pushed["body"]  # named by its title, decrypted by the fake service
        assert pushed["url"] == f"/feedback/{feedback_id_of(view)}"

    again = api.request("POST", f"/admin/v1/polls/{poll['id']}/feedback/publish", token=editor)
    assert again.status_code == 200 and again.json() == view  # idempotent: nothing new

    moved = api.request(
        "POST",
        f"/admin/v1/measures/{measure_id_of(measure)}/status",
        token=editor,
        json={"status": "in_progress", "note": "De palen zijn besteld."},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "in_progress"
    for resident in answered:
        wait_for(
            lambda r=resident: messages(push_service, r["subscription"], "measure"),
            timeout=15,
            message="the measure notification",
        )
        (update,) = messages(push_service, resident["subscription"], "measure")
        assert "Lantaarns langs het Zuilenpad" in update["title"]
        # The measure update came after the second publish: a duplicate feedback
        # notification would have been sent before it.
        assert [m["type"] for m in messages(push_service, resident["subscription"])] == [
            "invitation",
            "feedback",
            "measure",
        ]
    for resident in silent:
        assert [m["type"] for m in messages(push_service, resident["subscription"])] == [
            "invitation"
        ]
    with engines["notify"].connect() as conn:
        kinds = dict(
            conn.execute(
                sa.text(
                    "SELECT kind, count(*) FROM deliveries WHERE poll_id = :p "
                    "AND kind IN ('feedback', 'measure') GROUP BY kind"
                ),
                {"p": poll["id"]},
            ).all()
        )
    assert kinds == {"feedback": 2, "measure": 2}


# --- 2. refusals -----------------------------------------------------------------------------


def test_publishing_too_early_other_municipalities_viewers_and_bad_input_are_refused(api, town):
    editor, viewer, elsewhere = town["editor"], town["viewer"], town["amersfoort"]
    poll = open_poll(api, editor)
    path = f"/admin/v1/polls/{poll['id']}/feedback"
    save_draft(api, editor, poll["id"], draft("Wat we hoorden over veiligheid"))

    early = api.request("POST", f"{path}/publish", token=editor)
    assert early.status_code == 409 and early.headers["Content-Type"] == PROBLEM
    problem = early.json()
    assert problem["type"] == "/problems/conflict"
    assert "clos" in json.dumps(problem).lower(), problem  # says the poll must close first

    for method, suffix, body in (
        ("GET", "", None),
        ("PUT", "", draft("Niet van jullie")),
        ("POST", "/publish", None),
        ("POST", "/measures", {"title": "Niet van jullie", "owner": "Gemeente"}),
        ("GET", "/reactions", None),
    ):
        theirs = api.request(method, f"{path}{suffix}", token=elsewhere, json=body)
        assert theirs.status_code == 404, (method, suffix, theirs.text)
        assert theirs.headers["Content-Type"] == PROBLEM

    refused = api.request("PUT", path, token=viewer, json=draft("Alleen lezen"))
    assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden"
    assert api.request("GET", path, token=viewer).status_code == 200

    too_long = api.request("PUT", path, token=editor, json={**draft("x"), "title": "x" * 500})
    assert too_long.status_code == 422 and too_long.headers["Content-Type"] == PROBLEM
    assert [e["field"] for e in too_long.json()["errors"]] == ["title"]
    missing = api.request("PUT", path, token=editor, json={"title": "Alleen een titel"})
    assert missing.status_code == 422
    assert {"heard", "plan"} <= {e["field"] for e in missing.json()["errors"]}
    bad_useful = api.request(
        "PUT",
        f"/api/v1/feedback/{uuid.uuid4()}/reaction",
        token=resident_token(api, municipality=UTRECHT, buurt=HOME_BUURT),
        json={"useful": "misschien"},
    )
    assert bad_useful.status_code == 422 and bad_useful.json()["errors"][0]["field"] == "useful"

    for bad_path in (
        "/admin/v1/polls/not-a-uuid/feedback",
        "/admin/v1/measures/not-a-uuid/status",
    ):
        response = api.request(
            "POST" if bad_path.endswith("status") else "GET",
            bad_path,
            token=editor,
            json={"status": "done"},
        )
        assert response.status_code == 404 and response.headers["Content-Type"] == PROBLEM
    resident = resident_token(api, municipality=UTRECHT, buurt=HOME_BUURT)
    assert api.request("GET", "/api/v1/feedback/12345", token=resident).status_code == 404
    assert api.request("GET", f"/api/v1/feedback/{uuid.uuid4()}", token=resident).status_code == (
        404
    )

    measure = add_measure(api, editor, poll["id"], "Buurtpreventie-app")
    status_path = f"/admin/v1/measures/{measure_id_of(measure)}/status"
    theirs = api.request("POST", status_path, token=elsewhere, json={"status": "done"})
    assert theirs.status_code == 404
    patched = api.request(
        "PATCH",
        f"/admin/v1/measures/{measure_id_of(measure)}",
        token=editor,
        json={"owner": "Team Veiligheid"},
    )
    assert patched.status_code == 200 and patched.json()["owner"] == "Team Veiligheid"
    assert (
        api.request(
            "PATCH",
            f"/admin/v1/measures/{measure_id_of(measure)}",
            token=elsewhere,
            json={"owner": "Team Veiligheid"},
        ).status_code
        == 404
    )
    unknown_status = api.request("POST", status_path, token=editor, json={"status": "maybe"})
    assert unknown_status.status_code == 422
    assert unknown_status.json()["errors"][0]["field"] == "status"
    done = api.request("POST", status_path, token=editor, json={"status": "done"})
    assert done.status_code == 200, done.text
    backwards = api.request("POST", status_path, token=editor, json={"status": "in_progress"})
    assert backwards.status_code == 409 and backwards.headers["Content-Type"] == PROBLEM


# --- 3 and 4: residents and the public -------------------------------------------------------


@pytest.fixture
def published(api, town):
    """Three closed polls: feedback published first on one put to the home buurt, then on one
    put to wijk Oost, and a draft on the third that nobody outside may see."""
    editor = town["editor"]
    home = open_poll(api, editor, [HOME_BUURT])
    oost = open_poll(api, editor, [OOST], template="verlichting")
    unfinished = open_poll(api, editor, template="afval")
    for poll in (home, oost, unfinished):
        close(api, editor, poll["id"])
    save_draft(api, editor, home["id"], draft("Terugkoppeling voor uw buurt"))
    home_measure = add_measure(api, editor, home["id"], "Buurtschouw met de wijkagent")
    home_view = publish(api, editor, home["id"])
    save_draft(api, editor, oost["id"], draft("Terugkoppeling voor Oost"))
    oost_measure = add_measure(
        api, editor, oost["id"], "Ledverlichting in het Oostbroekpark", area_codes=[OOST]
    )
    oost_view = publish(api, editor, oost["id"])
    save_draft(api, editor, unfinished["id"], draft("Nog niet af"))
    return {
        "home": {"poll": home, "view": home_view, "measure": home_measure},
        "oost": {"poll": oost, "view": oost_view, "measure": oost_measure},
        "unfinished": unfinished,
    }


def react(api, feedback_id, buurt, body):
    token = resident_token(api, municipality=UTRECHT, buurt=buurt)
    response = api.request(
        "PUT", f"/api/v1/feedback/{feedback_id}/reaction", token=token, json=body
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_residents_read_published_feedback_their_buurt_first_and_react_once(api, town, published):
    me = resident_token(api, municipality=UTRECHT, buurt=HOME_BUURT)
    feed = api.request("GET", "/api/v1/feedback", token=me)
    assert feed.status_code == 200, feed.text
    # Oost's is newer, but the home buurt's comes first.
    assert [item["title"] for item in feed.json()] == [
        "Terugkoppeling voor uw buurt",
        "Terugkoppeling voor Oost",
    ]
    assert "Nog niet af" not in feed.text  # drafts stay in the town hall
    assert api.request("GET", "/api/v1/feedback").status_code == 401
    elsewhere = resident_token(api, municipality=AMERSFOORT, buurt="BU03070001")
    assert api.request("GET", "/api/v1/feedback", token=elsewhere).json() == []

    oost = feedback_id_of(published["oost"]["view"])
    detail = api.request("GET", f"/api/v1/feedback/{oost}", token=me)
    assert detail.status_code == 200, detail.text
    assert detail.json()["title"] == "Terugkoppeling voor Oost"
    assert [(m["title"], m["status"]) for m in detail.json()["measures"]] == [
        ("Ledverlichting in het Oostbroekpark", "planned")
    ]
    assert "@" not in detail.text  # no staff e-mail addresses for residents
    assert api.request("GET", f"/api/v1/feedback/{oost}", token=elsewhere).status_code == 404
    draft_view = api.request(
        "GET", f"/admin/v1/polls/{published['unfinished']['id']}/feedback", token=town["viewer"]
    ).json()
    hidden = api.request("GET", f"/api/v1/feedback/{feedback_id_of(draft_view)}", token=me)
    assert hidden.status_code == 404

    reaction = f"/api/v1/feedback/{oost}/reaction"
    first = api.request("PUT", reaction, token=me, json={"useful": False, "comment": "Te vaag."})
    assert first.status_code == 200, first.text
    second = api.request("PUT", reaction, token=me, json={"useful": True})
    assert second.status_code == 200, second.text
    assert api.request("GET", f"/api/v1/feedback/{oost}", token=me).json()["my_reaction"] == {
        "useful": True,
        "comment": None,
    }  # the second replaced the first

    # West: 13 with me (at least k); Noordwest 12 (at least k); Oost 2 (fewer than k).
    for _ in range(12):
        react(api, oost, HOME_BUURT, {"useful": True, "comment": "Fijn dat er iets gebeurt."})
    for _ in range(12):
        react(api, oost, "BU03440211", {"useful": False})
    for _ in range(2):
        react(api, oost, "BU03440301", {"useful": False, "comment": "Wij horen niets."})

    summary = api.request(
        "GET",
        f"/admin/v1/polls/{published['oost']['poll']['id']}/feedback/reactions",
        token=town["viewer"],
    )
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["n"] == 27  # one per resident: my first reaction was replaced, not added
    areas = {a["area_code"]: a for a in body["per_area"]}
    assert (areas[WEST]["n"], areas[WEST]["useful"]) == (13, 13)
    assert (areas[HOME_BUURT]["n"], areas[HOME_BUURT]["useful"]) == (13, 13)
    for small in (OOST, "BU03440301"):
        assert areas[small] == {
            "area_code": small,
            "level": areas[small]["level"],
            "suppressed": True,
        }
    # Hiding Oost alone would not do: the total minus the other wijken gives it away.
    assert areas["WK034402"]["suppressed"] is True
    assert "Wij horen niets." not in summary.text  # a comment from a small area names its writer
    assert "Te vaag." not in summary.text  # replaced
    assert {c["text"] for c in body["comments"]} == {"Fijn dat er iets gebeurt."}

    # The loop figures count the reactions as the released version shows them (13 of 27 found
    # it useful), and one reaction more does not move them until a version includes it.
    figures_url = "/admin/v1/feedback/figures"
    loop = api.request("GET", figures_url, token=town["viewer"])
    assert loop.status_code == 200, loop.text
    assert (loop.json()["reactions"], loop.json()["share_useful"]) == (27, 0.481)
    assert loop.json()["reactions_feedbacks_counted"] == 1
    react(api, oost, HOME_BUURT, {"useful": False})
    assert api.request("GET", figures_url, token=town["viewer"]).json() == loop.json()


def test_the_public_timeline_is_open_cacheable_and_newest_first(api, town, published):
    path = f"/public/v1/municipalities/{UTRECHT}/timeline"
    react(
        api,
        feedback_id_of(published["oost"]["view"]),
        HOME_BUURT,
        {"useful": False, "comment": "Geheim commentaar"},
    )

    first = api.request("GET", path, headers={"Origin": "https://buurtpeil.example"})
    assert first.status_code == 200, first.text
    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    timeline = first.json()
    assert timeline["municipality_code"] == UTRECHT
    assert [item["title"] for item in timeline["items"]] == [
        "Terugkoppeling voor Oost",
        "Terugkoppeling voor uw buurt",
    ]
    measures = [m for item in timeline["items"] for m in item["measures"]]
    assert {(m["title"], m["status"]) for m in measures} == {
        ("Ledverlichting in het Oostbroekpark", "planned"),
        ("Buurtschouw met de wijkagent", "planned"),
    }
    for secret in ("Geheim commentaar", "Nog niet af", "@test.nl", "editor@", "@"):
        assert secret not in first.text, secret

    cached = api.request("GET", path, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["ETag"] == etag
    assert api.request("GET", path, headers={"If-None-Match": f'"x", {etag}'}).status_code == 304
    assert api.request("GET", path, headers={"If-None-Match": '"other"'}).status_code == 200

    moved = api.request(
        "POST",
        f"/admin/v1/measures/{measure_id_of(published['home']['measure'])}/status",
        token=town["editor"],
        json={"status": "in_progress"},
    )
    assert moved.status_code == 200, moved.text
    changed = api.request("GET", path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert ("Buurtschouw met de wijkagent", "in_progress") in {
        (m["title"], m["status"]) for item in changed.json()["items"] for m in item["measures"]
    }

    preflight = api.request(
        "OPTIONS",
        path,
        headers={"Origin": "https://buurtpeil.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"

    empty = api.request("GET", f"/public/v1/municipalities/{AMERSFOORT}/timeline")
    assert empty.status_code == 200 and empty.json()["items"] == []
    for unknown in ("GM9999", "utrecht"):
        response = api.request("GET", f"/public/v1/municipalities/{unknown}/timeline")
        assert response.status_code == 404 and response.headers["Content-Type"] == PROBLEM
