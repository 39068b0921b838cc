"""Businesses and organisations in the panel (issue 14), through HTTP with every service
running on the real broker and databases: a business joins with its own letter code and its
KvK number (refused with a field-level 422 when the number is not 8 digits), a second contact
joins the same business with a contact code, a poll for ondernemers in an area reaches them
and no one else, the business answers once whichever contact sends it, every contact's
device gets the business's notifications (the fake push service decrypts them), and the
panel's composition counts businesses per buurt beside residents, small groups hidden."""

from __future__ import annotations

import html
import re

import pytest
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.audience import (
    invited,
    listed,
    publish,
    register_device,
    sign_up_by_email,
    submit,
)
from tests.support.feedback import add_measure, close, draft, measure_id_of, messages, save_draft
from tests.support.feedback import publish as publish_feedback
from tests.support.notify import shift_opening
from tests.support.panel import UTRECHT, profile, utrecht_files

WEST, WEST_BUURT = "WK034401", "BU03440111"
CENTRE, CENTRE_BUURT = "WK034406", "BU03440613"  # Binnenstad: Hoog-Catharijne en Jaarbeurs
FOR_SHOPS = {"kind": "areas", "area_codes": [CENTRE], "kinds": ["ondernemer"]}


@pytest.fixture
def gateway_overrides():
    """Limits out of the way: these tests join a few dozen participants from one address."""
    rules = ("join", "signup", "verify", "token", "refresh")
    return {"RATE_LIMITS": {name: "100000/min" for name in rules}}


@pytest.fixture
def notify_overrides():
    """Reminders looked for every 0.3 s: a test moves a poll's opening back to make one due."""
    return {"REMINDER_INTERVAL": 0.3}


@pytest.fixture
def town(api, service_config):
    """Utrecht with its CBS areas, without quiet hours (a push in the evening would wait for
    the morning)."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality(
            {"code": UTRECHT, "name": "Utrecht", "settings": {"quiet_hours": None}}
        )
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    return {
        "admin": api.staff_token(UTRECHT, "admin"),
        "editor": api.staff_token(UTRECHT, "editor"),
    }


def codes(api, admin, n, wijk, kind="resident"):
    batch = api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=admin,
        json={"per_wijk": {wijk: n}, "kind": kind},
    )
    assert batch.status_code == 201, batch.text
    assert batch.json()["kind"] == kind
    return [line.split(",")[0] for line in batch.json()["csv"].splitlines()[1:]]


def business(n):
    return {
        "kvk_number": f"{90000000 + n:08d}",
        "organisation_name": f"Winkel {n}",
        "buurt_code": CENTRE_BUURT,
        "language": "nl",
        "consent": True,
    }


def join(api, code, body):
    return api.request("POST", "/api/v1/join", json={"invitation_code": code, **body})


def joined(api, code, body):
    session = join(api, code, body)
    assert session.status_code == 201, session.text
    found = session.json()
    return found["resident"]["resident_id"], found["access_token"]


def receipt(api, token, sent):
    return api.request("GET", f"/api/v1/receipts/{sent.json()['receipt_id']}", token=token).json()


def field_errors(reply):
    return {(e["field"], e["code"]) for e in reply.json()["errors"]}


def test_a_business_joins_with_its_kvk_number_and_bad_numbers_are_refused_per_field(api, town):
    code = codes(api, town["admin"], 1, CENTRE, kind="ondernemer")[0]
    body = business(1)
    for bad, problem in (
        (None, "required"),
        ("1234567", "invalid_kvk"),
        ("123456789", "invalid_kvk"),
        ("1234567a", "invalid_kvk"),
        ("12 345 678", "invalid_kvk"),
    ):
        refused = join(api, code, {**body, "kvk_number": bad})
        assert refused.status_code == 422, refused.text
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert ("kvk_number", problem) in field_errors(refused)
    nameless = join(api, code, {**body, "organisation_name": " "})
    assert ("organisation_name", "required") in field_errors(nameless)
    wrong_kind = join(api, code, {**body, "kind": "organisatie"})
    assert wrong_kind.status_code == 422 and ("kind", "code_for_other_kind") in field_errors(
        wrong_kind
    )
    # None of the refusals used the code up.
    resident_id, token = joined(api, code, {**body, "kvk_number": " 90000001 "})
    me = api.request("GET", "/api/v1/me", token=token).json()
    assert me["kind"] == "ondernemer" and me["kvk_number"] == "90000001"
    assert me["organisation_name"] == "Winkel 1" and me["buurt_code"] == CENTRE_BUURT
    assert me["birth_year"] is None and me["age_band"] is None
    # One KvK number joins once; a resident's code takes no KvK number.
    again = join(api, codes(api, town["admin"], 1, CENTRE, kind="ondernemer")[0], body)
    assert again.status_code == 409, again.text
    resident_code = codes(api, town["admin"], 1, WEST)[0]
    refused = join(api, resident_code, profile(kvk_number="12345678"))
    assert ("kvk_number", "not_an_organisation") in field_errors(refused)
    # Residents join as before: kind resident.
    _, resident_token = joined(api, resident_code, profile(buurt_code=WEST_BUURT))
    assert api.request("GET", "/api/v1/me", token=resident_token).json()["kind"] == "resident"
    # A resident has no contacts.
    no_contacts = api.request("POST", "/api/v1/me/contacts", token=resident_token, json={})
    assert no_contacts.status_code == 409


def test_a_poll_for_ondernemers_in_an_area_reaches_only_them(api, town, engines):
    admin = town["admin"]
    shops = [
        joined(api, code, business(i))
        for i, code in enumerate(codes(api, admin, 3, CENTRE, kind="ondernemer"))
    ]
    elsewhere = joined(
        api,
        codes(api, admin, 1, WEST, kind="ondernemer")[0],
        {**business(9), "buurt_code": WEST_BUURT},
    )
    school = joined(
        api,
        codes(api, admin, 1, CENTRE, kind="organisatie")[0],
        {**business(8), "organisation_name": "Basisschool De Dom"},
    )
    residents = [
        joined(api, code, profile(buurt_code=CENTRE_BUURT)) for code in codes(api, admin, 2, CENTRE)
    ]
    reach = api.request(
        "GET",
        f"/admin/v1/audience/reach?kind=areas&area_codes={CENTRE}&kinds=ondernemer",
        token=admin,
    )
    assert reach.status_code == 200, reach.text
    poll_id = publish(api, admin, FOR_SHOPS)
    shop_ids = {rid for rid, _ in shops}
    wait_for(lambda: invited(engines["notify"], poll_id) == shop_ids, message="the invitations")
    # Residents' polls stay residents' polls: no kinds means residents only.
    residents_poll = publish(api, admin, {"kind": "areas", "area_codes": [CENTRE]})
    wait_for(
        lambda: invited(engines["notify"], residents_poll) == {rid for rid, _ in residents},
        message="the residents' invitations",
    )
    for _, token in shops:
        wait_for(lambda t=token: listed(api, t) == [poll_id], interval=0.3, message="listed")
    definition = api.request("GET", f"/api/v1/polls/{poll_id}", token=shops[0][1]).json()[
        "definition"
    ]
    answers = minimal_answers(definition)
    for _, token in [elsewhere, school, *residents]:
        assert poll_id not in listed(api, token)
        assert api.request("GET", f"/api/v1/polls/{poll_id}", token=token).status_code == 404
        assert submit(api, token, poll_id, answers).status_code == 404
    sent = submit(api, shops[0][1], poll_id, answers)
    assert sent.status_code == 202, sent.text
    wait_for(
        lambda: receipt(api, shops[0][1], sent)["status"] == "recorded",
        message="the business's answer recorded",
    )


def test_a_poll_for_ondernemers_in_a_region_reaches_only_them(api, town, engines):
    """The issue's case: the ondernemers of a shopping area's region, nobody else."""
    admin = town["admin"]
    buurten = api.request("GET", "/admin/v1/areas?level=buurt", token=admin).json()
    centre = [b["code"] for b in buurten if b["code"].startswith("BU" + CENTRE[2:])]
    region = api.request(
        "POST",
        "/admin/v1/regions",
        token=admin,
        json={"name": "Winkelgebied", "buurt_codes": centre},
    )
    assert region.status_code == 201, region.text
    shops = [
        joined(api, code, business(20 + i))
        for i, code in enumerate(codes(api, admin, 2, CENTRE, kind="ondernemer"))
    ]
    outside = joined(
        api,
        codes(api, admin, 1, WEST, kind="ondernemer")[0],
        {**business(29), "buurt_code": WEST_BUURT},
    )
    resident = joined(api, codes(api, admin, 1, CENTRE)[0], profile(buurt_code=CENTRE_BUURT))
    audience = {"kind": "areas", "region_codes": [region.json()["code"]], "kinds": ["ondernemer"]}
    poll_id = publish(api, admin, audience)
    wait_for(
        lambda: invited(engines["notify"], poll_id) == {rid for rid, _ in shops},
        message="the invitations of the region's ondernemers",
    )
    for _, token in shops:
        wait_for(lambda t=token: poll_id in listed(api, t), interval=0.3, message="listed")
    for _, token in (outside, resident):
        assert poll_id not in listed(api, token)
        assert api.request("GET", f"/api/v1/polls/{poll_id}", token=token).status_code == 404


def test_a_business_with_two_contacts_answers_a_poll_once(api, town, engines):
    admin = town["admin"]
    shop_id, first = joined(api, codes(api, admin, 1, CENTRE, kind="ondernemer")[0], business(1))
    made = api.request("POST", "/api/v1/me/contacts", token=first, json={})
    assert made.status_code == 201, made.text
    assert made.json()["organisation_name"] == "Winkel 1"
    contact_code = made.json()["code"]
    # The contact code names its business: no KvK number or buurt is asked again.
    second_id, second = joined(api, contact_code, {"consent": True, "language": "nl"})
    assert second_id == shop_id
    assert join(api, contact_code, {"consent": True}).status_code == 422  # single use
    contacts = api.request("GET", "/api/v1/me/contacts", token=second)
    assert contacts.status_code == 200 and len(contacts.json()) == 2
    poll_id = publish(api, admin, FOR_SHOPS)
    wait_for(lambda: invited(engines["notify"], poll_id) == {shop_id}, message="the invitation")
    for token in (first, second):
        wait_for(lambda t=token: listed(api, t) == [poll_id], interval=0.3, message="listed")
    answers = minimal_answers(
        api.request("GET", f"/api/v1/polls/{poll_id}", token=first).json()["definition"]
    )
    sent = submit(api, first, poll_id, answers)
    assert sent.status_code == 202, sent.text
    refused = submit(api, second, poll_id, answers)
    assert refused.status_code == 409, refused.text
    assert ("poll_id", "already_answered") in field_errors(refused)
    wait_for(lambda: receipt(api, first, sent)["status"] == "recorded", message="recorded")
    with engines["responses"].connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM responses WHERE poll_id = :p"), {"p": poll_id}
        ).scalar()
    assert count == 1


def deliveries_of(engine, poll_id, participant, kind):
    """notify's delivery records of one kind of notification to one participant: (seq,
    status, the devices it is done with)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT seq, status, done_endpoints::text[] FROM deliveries WHERE poll_id = :p "
                "AND resident_id = :r AND kind = :k ORDER BY seq"
            ),
            {"p": poll_id, "r": participant, "k": kind},
        ).all()


def devices_in_notify(engine, participant):
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text("SELECT id::text FROM endpoints WHERE resident_id = :r"), {"r": participant}
            ).scalars()
        )


def answered_in_notify(engine, poll_id, participant):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT answered FROM invitations WHERE poll_id = :p AND resident_id = :r"),
            {"p": poll_id, "r": participant},
        ).scalar()


def test_every_contact_s_device_gets_the_business_s_notifications(api, town, engines, push_service):
    """Two contacts of one business each turn on messages in their own browser: the
    invitation and the reminder reach both devices, one delivery record for the business;
    once one contact answered, no reminder reaches either; a device whose subscription is gone
    (410) is removed, and the other contact still gets the feedback and the measure update;
    when the business leaves, every contact's device goes with it."""
    admin, editor, notify = town["admin"], town["editor"], engines["notify"]
    shop_id, first = joined(api, codes(api, admin, 1, CENTRE, kind="ondernemer")[0], business(1))
    contact_code = api.request("POST", "/api/v1/me/contacts", token=first, json={}).json()["code"]
    second_id, second = joined(api, contact_code, {"consent": True, "language": "nl"})
    assert second_id == shop_id
    # Another shop, which never answers: its reminders show when the reminder timer has run.
    other_id, other = joined(api, codes(api, admin, 1, CENTRE, kind="ondernemer")[0], business(2))
    mine, theirs = (
        register_device(api, push_service, first),
        register_device(api, push_service, second),
    )
    witness = register_device(api, push_service, other)
    # Both contacts see the business's two devices (one participant, one list).
    for token in (first, second):
        listed_devices = api.request("GET", "/api/v1/devices", token=token).json()
        assert {d["device_id"] for d in listed_devices} == {mine["device_id"], theirs["device_id"]}

    poll_id = publish(api, admin, FOR_SHOPS, reminder_after_hours=[2, 48])
    wait_for(lambda: invited(notify, poll_id) == {shop_id, other_id}, message="the invitations")

    def got(subscription, kind):
        return messages(push_service, subscription, kind)

    for subscription in (mine, theirs, witness):
        wait_for(lambda s=subscription: got(s, "invitation"), timeout=15, message="invitation")
    for subscription in (mine, theirs):
        (invitation,) = got(subscription, "invitation")  # decrypted by the fake push service
        assert invitation["poll_id"] == poll_id and invitation["url"] == f"/polls/{poll_id}"
        assert invitation["title"] == "Nieuwe peiling: Veilig in de buurt"
    # One record per participant and notification, done with both of its devices.
    wait_for(
        lambda: [r[1] for r in deliveries_of(notify, poll_id, shop_id, "invitation")] == ["sent"],
        message="the business's invitation recorded as sent",
    )
    ((_, _, done),) = deliveries_of(notify, poll_id, shop_id, "invitation")
    assert set(done) == {mine["device_id"], theirs["device_id"]}
    summary = api.request("GET", f"/admin/v1/polls/{poll_id}/deliveries", token=admin).json()
    assert summary["invited"] == 2
    assert [(d["kind"], d["status"], d["count"]) for d in summary["deliveries"]] == [
        ("invitation", "sent", 2)  # two businesses, not three devices
    ]

    # Two hours on, unanswered: the first reminder reaches both contacts' devices.
    shift_opening(notify, poll_id, hours=3)
    for subscription in (mine, theirs, witness):
        wait_for(lambda s=subscription: got(s, "reminder"), timeout=15, message="the reminder")

    # The second contact answers for the business: no reminder reaches either device again.
    answers = minimal_answers(
        api.request("GET", f"/api/v1/polls/{poll_id}", token=second).json()["definition"]
    )
    sent = submit(api, second, poll_id, answers)
    assert sent.status_code == 202, sent.text
    wait_for(lambda: answered_in_notify(notify, poll_id, shop_id), message="the answer in notify")
    shift_opening(notify, poll_id, hours=48)
    wait_for(lambda: len(got(witness, "reminder")) == 2, timeout=15, message="second reminder")
    wait_for(
        lambda: (
            [r[1] for r in deliveries_of(notify, poll_id, other_id, "reminder")] == ["sent", "sent"]
        ),
        message="the other shop's reminders recorded",
    )
    # Queued in the same statement as the other shop's: the business has none.
    assert [r[0] for r in deliveries_of(notify, poll_id, shop_id, "reminder")] == [1]
    assert len(got(mine, "reminder")) == 1 and len(got(theirs, "reminder")) == 1

    # The second contact's browser dropped its subscription: its push service answers 410.
    push_service.unregister(theirs["endpoint"])
    close(api, editor, poll_id)
    save_draft(api, editor, poll_id, draft("Wat de winkeliers zeiden"))
    measure = add_measure(api, editor, poll_id, "Camera's in Hoog-Catharijne", area_codes=[CENTRE])
    publish_feedback(api, editor, poll_id)
    wait_for(lambda: got(mine, "feedback"), timeout=15, message="the feedback notice")
    wait_for(
        lambda: [r[1] for r in deliveries_of(notify, poll_id, shop_id, "feedback")] == ["sent"],
        message="the feedback notice recorded",
    )
    assert devices_in_notify(notify, shop_id) == {mine["device_id"]}  # only that one removed
    assert push_service.rejected == {410: 1}
    assert not got(witness, "feedback")  # feedback goes to those who answered
    listed_devices = api.request("GET", "/api/v1/devices", token=second).json()
    assert [d["device_id"] for d in listed_devices] == [mine["device_id"]]

    moved = api.request(
        "POST",
        f"/admin/v1/measures/{measure_id_of(measure)}/status",
        token=editor,
        json={"status": "in_progress", "note": "De camera's zijn besteld."},
    )
    assert moved.status_code == 200, moved.text
    wait_for(lambda: got(mine, "measure"), timeout=15, message="the measure update")
    wait_for(
        lambda: [r[1] for r in deliveries_of(notify, poll_id, shop_id, "measure")] == ["sent"],
        message="the measure update recorded",
    )
    assert push_service.rejected == {410: 1}  # the removed device was not tried again
    assert [m["type"] for m in messages(push_service, mine)] == [
        "invitation",
        "reminder",
        "feedback",
        "measure",
    ]

    # The first contact leaves alone, taking its device; the business stays with the second.
    assert api.request("DELETE", "/api/v1/me", token=first).status_code == 204
    wait_for(lambda: not devices_in_notify(notify, shop_id), message="its device erased")
    assert deliveries_of(notify, poll_id, shop_id, "invitation")  # the business is still here
    # The last contact leaves: the business leaves, and what notify held on it goes.
    assert api.request("DELETE", "/api/v1/me", token=second).status_code == 204
    wait_for(
        lambda: not deliveries_of(notify, poll_id, shop_id, "invitation"),
        message="the business erased in notify",
    )


def two_contacts(api, admin, n):
    """A business with two contacts: (business id, first's session, second's session)."""
    first = join(api, codes(api, admin, 1, CENTRE, kind="ondernemer")[0], business(n))
    assert first.status_code == 201, first.text
    shop_id, first = first.json()["resident"]["resident_id"], first.json()
    made = api.request("POST", "/api/v1/me/contacts", token=first["access_token"], json={}).json()[
        "code"
    ]
    second = join(api, made, {"consent": True, "language": "nl"})
    assert second.status_code == 201, second.text
    assert second.json()["resident"]["resident_id"] == shop_id
    return shop_id, first, second.json()


def status_of(api, token, path="/api/v1/me"):
    return api.request("GET", path, token=token).status_code


def panel_holds(engine, shop_id):
    """(the business's row, its contacts, its refresh tokens) in panel."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT count(*) FROM residents WHERE id = :r"), {"r": shop_id}
        ).scalar()
        contacts = conn.execute(
            sa.text("SELECT count(*) FROM contacts WHERE resident_id = :r"), {"r": shop_id}
        ).scalar()
        tokens = conn.execute(
            sa.text("SELECT count(*) FROM refresh_tokens WHERE resident_id = :r"), {"r": shop_id}
        ).scalar()
    return row, contacts, tokens


def test_a_contact_sees_whose_device_is_whose_and_cannot_remove_a_colleague_s(
    api, town, push_service
):
    """Each contact's list says which devices are its own (first) and which a colleague's,
    named by contact id (which GET /api/v1/me/contacts resolves); removing a colleague's device
    is 403 problem+json and it keeps its messages; removing one's own works."""
    shop_id, first, second = two_contacts(api, town["admin"], 1)
    a, b = first["access_token"], second["access_token"]
    mine, theirs = register_device(api, push_service, a), register_device(api, push_service, b)
    contacts = api.request("GET", "/api/v1/me/contacts", token=b).json()
    (me,) = [c for c in contacts if c["me"]]
    (colleague,) = [c for c in contacts if not c["me"]]
    seen = api.request("GET", "/api/v1/devices", token=a).json()
    assert [(d["device_id"], d["registered_by"]) for d in seen] == [
        (mine["device_id"], "me"),
        (theirs["device_id"], "colleague"),
    ]
    assert seen[1]["contact_id"] == me["contact_id"]  # the second contact's
    assert seen[0]["contact_id"] == colleague["contact_id"]  # the first's, seen from the second
    refused = api.request("DELETE", f"/api/v1/devices/{theirs['device_id']}", token=a)
    assert refused.status_code == 403, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/forbidden")
    assert ("device_id", "colleague_s_device") in field_errors(refused)
    assert {d["device_id"] for d in api.request("GET", "/api/v1/devices", token=b).json()} == {
        mine["device_id"],
        theirs["device_id"],
    }
    assert api.request("DELETE", f"/api/v1/devices/{mine['device_id']}", token=a).status_code == 204
    # A resident's devices are all its own.
    resident = joined(
        api, codes(api, town["admin"], 1, CENTRE)[0], profile(buurt_code=CENTRE_BUURT)
    )
    own = register_device(api, push_service, resident[1])
    listed_devices = api.request("GET", "/api/v1/devices", token=resident[1]).json()
    assert [(d["device_id"], d["registered_by"]) for d in listed_devices] == [
        (own["device_id"], "me")
    ]


def test_one_contact_leaves_alone_and_the_business_stays_with_the_other(
    api, town, engines, push_service
):
    """Two contacts, one leaves: its tokens are refused (401, its refresh token too), its
    device and e-mail address erased, its device gets nothing more; the other still gets the
    invitation and answers for the business. The last contact leaves: the business is erased
    as before (resident_left: its row, its sessions, notify's projection)."""
    admin, notify, panel = town["admin"], engines["notify"], engines["panel"]
    shop_id, first, second = two_contacts(api, admin, 1)
    a, b = first["access_token"], second["access_token"]
    mine, theirs = register_device(api, push_service, a), register_device(api, push_service, b)
    wait_for(
        lambda: devices_in_notify(notify, shop_id) == {mine["device_id"], theirs["device_id"]},
        message="both devices in notify",
    )

    left = api.request("DELETE", "/api/v1/me", token=b)  # the second contact leaves
    assert left.status_code == 204, left.text
    wait_for(lambda: status_of(api, b) == 401, message="the leaver's token refused")
    refresh = api.request(
        "POST", "/api/v1/token/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert status_of(api, a) == 200  # the first contact's session goes on
    wait_for(
        lambda: devices_in_notify(notify, shop_id) == {mine["device_id"]},
        message="the leaver's device erased",
    )
    assert panel_holds(panel, shop_id)[:2] == (1, 1)  # the business, and one contact
    assert len(api.request("GET", "/api/v1/me/contacts", token=a).json()) == 1
    # The leaver's token cannot register a device any more.
    key = api.request("GET", "/api/v1/push/vapid-public-key").json()["application_server_key"]
    late = push_service.subscribe(key)
    assert (
        api.request(
            "POST",
            "/api/v1/devices",
            token=b,
            json={"channel": "webpush", "endpoint": late["endpoint"], "keys": late["keys"]},
        ).status_code
        == 401
    )

    poll_id = publish(api, admin, FOR_SHOPS)
    wait_for(lambda: invited(notify, poll_id) == {shop_id}, message="the business invited")
    wait_for(lambda: messages(push_service, mine, "invitation"), timeout=15, message="invitation")
    assert not messages(push_service, theirs) and not messages(push_service, late)
    wait_for(lambda: listed(api, a) == [poll_id], interval=0.3, message="listed")
    answers = minimal_answers(
        api.request("GET", f"/api/v1/polls/{poll_id}", token=a).json()["definition"]
    )
    sent = submit(api, a, poll_id, answers)
    assert sent.status_code == 202, sent.text
    wait_for(lambda: receipt(api, a, sent)["status"] == "recorded", message="recorded")

    # The last contact leaves: the business is erased, as a resident who leaves.
    assert api.request("DELETE", "/api/v1/me", token=a).status_code == 204
    wait_for(lambda: status_of(api, a) == 401, message="the last contact's token refused")
    assert panel_holds(panel, shop_id) == (0, 0, 0)
    wait_for(lambda: not devices_in_notify(notify, shop_id), message="the business's devices")
    wait_for(
        lambda: answered_in_notify(notify, poll_id, shop_id) is None,
        message="the business erased in notify",
    )
    with engines["responses"].connect() as conn:
        counted = conn.execute(
            sa.text("SELECT count(*) FROM responses WHERE poll_id = :p"), {"p": poll_id}
        ).scalar()
    assert counted == 1  # its answer stays in the totals, without any link


def test_a_business_that_joined_by_e_mail_loses_its_address_with_the_contact_who_gave_it(
    api, town, engines, smtp_sink
):
    """The first contact of a business that signed up by e-mail leaves alone: the business's
    address was theirs, so it is erased in panel and notify, and the other contact stays."""
    panel, notify = engines["panel"], engines["notify"]
    email = "eigenaar@bakker.example"
    finished = sign_up_by_email(
        api, smtp_sink, UTRECHT, email, {"kind": "ondernemer", **business(7)}
    )
    assert finished.status_code == 201, finished.text
    shop_id, a = finished.json()["resident"]["resident_id"], finished.json()["access_token"]
    made = api.request("POST", "/api/v1/me/contacts", token=a, json={}).json()["code"]
    _, b = joined(api, made, {"consent": True, "language": "nl"})

    def addresses():
        with notify.connect() as conn:
            return set(
                conn.execute(
                    sa.text(
                        "SELECT address FROM endpoints WHERE resident_id = :r AND channel = 'email'"
                    ),
                    {"r": shop_id},
                ).scalars()
            )

    wait_for(lambda: addresses() == {email}, message="the business's address in notify")
    assert api.request("DELETE", "/api/v1/me", token=a).status_code == 204
    wait_for(lambda: not addresses(), message="the address erased in notify")
    me = api.request("GET", "/api/v1/me", token=b).json()
    assert me["email"] is None and me["organisation_name"] == "Winkel 7"
    with panel.connect() as conn:
        kept = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE envelope::text LIKE :e"), {"e": f"%{email}%"}
        ).scalar()
    assert kept == 0  # no outbox row keeps the address either


def test_the_composition_counts_businesses_per_buurt_beside_residents(api, town):
    admin = town["admin"]
    for i, code in enumerate(codes(api, admin, 12, CENTRE, kind="ondernemer")):
        joined(api, code, business(i))
    # Two shops in another buurt of the centre: too few to show.
    for i, code in enumerate(codes(api, admin, 2, CENTRE, kind="ondernemer"), start=20):
        joined(api, code, {**business(i), "buurt_code": "BU03440621"})
    for code in codes(api, admin, 12, CENTRE):
        joined(api, code, profile(buurt_code=CENTRE_BUURT))
    found = api.request("GET", "/admin/v1/panel/composition", token=admin)
    assert found.status_code == 200, found.text
    doc = found.json()
    assert doc["members"] == 12  # the CBS comparisons are of residents
    areas = {a["code"]: a for a in doc["by_kind"]}
    k = doc["k"]
    assert k > 2
    gemeente = {g["kind"]: g["members"] for g in areas[UTRECHT]["kinds"]}
    assert gemeente == {"resident": 12, "ondernemer": 14, "organisatie": 0}
    buurt = {g["kind"]: g for g in areas[CENTRE_BUURT]["kinds"]}
    assert areas[CENTRE_BUURT]["level"] == "buurt"
    assert areas[CENTRE_BUURT]["parent_code"] == CENTRE
    assert buurt["ondernemer"]["members"] in (12, None)
    small = {g["kind"]: g for g in areas["BU03440621"]["kinds"]}
    assert small["ondernemer"]["members"] is None and small["ondernemer"]["hidden"]
    # Whatever is shown adds up: no hidden count can be worked out from the buurten.
    shown = [
        {g["kind"]: g["members"] for g in a["kinds"]}
        for a in doc["by_kind"]
        if a["parent_code"] == CENTRE
    ]
    hidden_ondernemers = [s for s in shown if s["ondernemer"] is None]
    assert len(hidden_ondernemers) != 1  # one hidden cell in a row of the wijk would be exact


def test_the_demo_loop_s_ten_businesses_in_the_centre_join_and_answer(api, town):
    """``make run``'s step for businesses (deploy/demo_businesses.py) against the real system:
    ten ondernemers of the Binnenstad join, see their poll (a resident does not) and answer."""
    import random

    from deploy.demo_businesses import CENTRE, businesses_in_the_centre
    from deploy.demo_panel import Member
    from deploy.walkthrough import Http

    http = Http(api.base)
    buurten = http("GET", "/admin/v1/areas?level=buurt", town["admin"])
    _, resident_token = joined(api, codes(api, town["admin"], 1, WEST)[0], profile())
    resident = Member(WEST_BUURT, WEST, "25_44", 1990, "vrouw", "webpush", token=resident_token)
    said: list[str] = []
    outcome = businesses_in_the_centre(
        http, town["admin"], buurten, random.Random(7), said.append, residents=[resident]
    )
    assert outcome["businesses"] == 10 and outcome["answered"] == 10
    assert outcome["poll"]["audience"]["kinds"] == ["ondernemer"]
    assert outcome["poll"]["audience"]["area_codes"] == [CENTRE]
    assert any("10 answered" in line for line in said), said


def page_session(api, access):
    """A browser signed in to Utrecht's app with ``access`` (the access cookie), and a CSRF
    token for its forms."""
    browser = requests.Session()
    browser.cookies.set("bp_resident_access", access)
    page = browser.get(api.url("/app/GM0344/"), timeout=30)
    return browser, re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def test_the_app_s_pages_say_whose_device_is_whose_and_that_the_organisation_stays(
    api, town, push_service
):
    """In the business's app: the devices page labels the contact's own device and a
    colleague's (which has no button, and whose removal is refused in Dutch); the leave page
    says the organisation goes on with the other contacts, and so does the page after."""
    shop_id, first, second = two_contacts(api, town["admin"], 1)
    mine = register_device(api, push_service, first["access_token"])
    theirs = register_device(api, push_service, second["access_token"])
    browser, csrf = page_session(api, first["access_token"])
    devices = browser.get(api.url("/app/GM0344/meldingen"), timeout=30)
    assert devices.status_code == 200
    text = html.unescape(devices.text)
    assert "Uw apparaat" in text and "Apparaat van een andere contactpersoon" in text
    assert "Alleen uw collega kan de berichten naar dit apparaat stoppen." in text
    assert f'value="{mine["device_id"]}"' in devices.text
    assert f'value="{theirs["device_id"]}"' not in devices.text  # no button for it
    refused = browser.post(
        api.url("/app/GM0344/meldingen"),
        data={"csrf_token": csrf, "remove_device": theirs["device_id"]},
        timeout=30,
    )
    assert refused.status_code == 403
    assert "Dit apparaat is van een collega" in html.unescape(refused.text)

    leaving = browser.get(api.url("/app/GM0344/uitschrijven"), timeout=30)
    assert leaving.status_code == 200
    assert (
        "U verlaat het panel; uw organisatie blijft deelnemen met de andere contactpersonen."
        in html.unescape(leaving.text)
    )
    left = browser.post(
        api.url("/app/GM0344/uitschrijven"),
        data={"csrf_token": csrf, "confirm": "ja"},
        allow_redirects=False,
        timeout=30,
    )
    assert left.status_code == 303, left.text
    assert left.headers["Location"] == "/app/GM0344/tot-ziens?contact=1"
    goodbye = requests.get(api.url(left.headers["Location"]), timeout=30)
    assert "Uw organisatie blijft deelnemen met de andere contactpersonen." in html.unescape(
        goodbye.text
    )
    # The other contact is now the last: its leave page is a resident's, and leaving ends it.
    last, _ = page_session(api, second["access_token"])
    text = html.unescape(last.get(api.url("/app/GM0344/uitschrijven"), timeout=30).text)
    assert "uw organisatie blijft deelnemen" not in text
    assert api.request("GET", "/api/v1/me", token=second["access_token"]).status_code == 200


def test_a_session_and_a_device_from_before_contacts_were_told_apart(
    api, town, engines, push_service
):
    """A session that names no contact (it began before sessions named theirs, and the
    migration could not match it) cannot leave alone while there are other contacts: 409,
    and nobody leaves; a device that names no contact is listed as unknown and any contact may
    remove it."""
    shop_id, first, second = two_contacts(api, town["admin"], 1)
    device = register_device(api, push_service, first["access_token"])
    with engines["panel"].begin() as conn:
        conn.execute(sa.text("UPDATE refresh_tokens SET contact_id = NULL"))
    with engines["notify"].begin() as conn:
        conn.execute(sa.text("UPDATE endpoints SET contact_id = NULL"))
    renewed = api.request(
        "POST", "/api/v1/token/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
    old = renewed.json()["access_token"]
    refused = api.request("DELETE", "/api/v1/me", token=old)
    assert refused.status_code == 409, refused.text
    assert ("contact", "contact_unknown") in field_errors(refused)
    assert len(api.request("GET", "/api/v1/me/contacts", token=old).json()) == 2
    seen = api.request("GET", "/api/v1/devices", token=second["access_token"]).json()
    assert [(d["device_id"], d["registered_by"]) for d in seen] == [
        (device["device_id"], "unknown")
    ]
    removed = api.request(
        "DELETE", f"/api/v1/devices/{device['device_id']}", token=second["access_token"]
    )
    assert removed.status_code == 204
