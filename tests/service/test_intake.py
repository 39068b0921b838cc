"""Answering a poll over HTTP: Idempotency-Key, receipts, one response per resident, counters,
no resident id in responses, and a poison message that does not stop the rest."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import jwt
import openpyxl
import pytest
import sqlalchemy as sa
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.amqp import ConfirmingPublisher
from services.common.deadletter import show
from services.common.errors import NotFound
from services.common.intake import INTAKE_QUEUE, intake_queue
from tests.conftest import wait_for
from tests.support import infra
from tests.support.answers import minimal_answers as answers_for
from tests.support.gateway import resident_token
from tests.support.openapi import assert_documented
from tests.support.panel import UTRECHT, profile, utrecht_files

ANSWERS = {"veilig_buurt": 4}


@pytest.fixture
def voting(api, service_config):
    """Utrecht, a poll open for wijk West, and two residents of West with their tokens."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    admin = api.staff_token(UTRECHT, "admin")
    batch = api.request(
        "POST", "/admin/v1/invitation-batches", token=admin, json={"per_wijk": {"WK034401": 2}}
    ).json()
    codes = [line.split(",")[0] for line in batch["csv"].splitlines()[1:]]
    tokens = [
        api.request("POST", "/api/v1/join", json={"invitation_code": c, **profile()}).json()[
            "access_token"
        ]
        for c in codes
    ]
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
    wait_for(
        lambda: api.request("GET", "/api/v1/polls", token=tokens[0]).json(),
        message="the poll in the gateway's cache",
    )
    return {"poll": poll, "tokens": tokens}


def submit(api, voting, token, answers, key=None):
    return api.request(
        "POST",
        f"/api/v1/polls/{voting['poll']['id']}/responses",
        token=token,
        json={"answers": answers},
        headers={"Idempotency-Key": key} if key is not False else {},
    )


def minimal_answers(api, voting, token):
    """Every required question that is shown, answered minimally (as the library test does)."""
    definition = api.request("GET", f"/api/v1/polls/{voting['poll']['id']}", token=token).json()[
        "definition"
    ]
    return answers_for(definition)


def test_idempotent_submission_receipts_and_one_response_per_resident(api, voting, engines):
    token = voting["tokens"][0]
    answers = minimal_answers(api, voting, token)
    assert submit(api, voting, token, answers, key=False).status_code == 400
    first = submit(api, voting, token, answers, key="k-1")
    assert first.status_code == 202, first.text
    again = submit(api, voting, token, answers, key="k-1")
    assert (again.status_code, again.json()) == (202, first.json())
    other_body = submit(api, voting, token, {**answers, "veilig_buurt": 1}, key="k-1")
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0]["field"] == "Idempotency-Key"

    receipt = first.json()["receipt_id"]
    wait_for(
        lambda: (
            api.request("GET", f"/api/v1/receipts/{receipt}", token=token).json()["status"]
            == "recorded"
        ),
        message="the receipt recorded",
    )
    second = submit(api, voting, token, answers, key="k-2")  # a second answer: refused later
    assert second.status_code == 202
    wait_for(
        lambda: (
            api.request(
                "GET", f"/api/v1/receipts/{second.json()['receipt_id']}", token=token
            ).json()["status"]
            == "rejected"
        ),
        message="the second answer refused",
    )
    refused = api.request(
        "GET", f"/api/v1/receipts/{second.json()['receipt_id']}", token=token
    ).json()
    assert refused["reason"] == "already_answered"
    assert (
        api.request("GET", f"/api/v1/receipts/{uuid.uuid4()}.forged", token=token).status_code
        == 404
    )

    engine = engines["responses"]
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.text(
                    "SELECT area_code, sum(n) FROM counts WHERE question_id = 'veilig_buurt' "
                    "GROUP BY area_code"
                )
            ).all()
        )
    assert counts == {"GM0344": 1, "WK034401": 1, "BU03440111": 1}

    resident_id = api.request("GET", "/api/v1/me", token=token).json()["resident_id"]
    wait_for(
        lambda: not infra.tables_holding(engine, resident_id), message="no resident id in responses"
    )


def test_invalid_answers_name_the_question(api, voting):
    token = voting["tokens"][0]
    response = submit(api, voting, token, {"veilig_buurt": 9, "bestaat_niet": 1}, key="bad")
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"answers.veilig_buurt", "answers.bestaat_niet"} <= fields


def test_a_location_must_lie_in_the_municipality(api, voting):
    token = voting["tokens"][0]
    answers = minimal_answers(api, voting, token)
    amsterdam = {**answers, "onveilige_plek": {"lat": 52.37, "lon": 4.90}}
    outside = submit(api, voting, token, amsterdam, key="far")
    assert outside.status_code == 422
    assert outside.json()["errors"] == [
        {
            "field": "answers.onveilige_plek",
            "code": "outside_area",
            "message": outside.json()["errors"][0]["message"],
        }
    ]
    domtoren = {**answers, "onveilige_plek": {"lat": 52.0907, "lon": 5.1214}}
    assert submit(api, voting, token, domtoren, key="near").status_code == 202


def test_a_poison_message_is_dead_lettered_and_the_rest_is_recorded(api, voting, amqp_uri):
    publisher = ConfirmingPublisher(amqp_uri)
    publisher.publish(
        {"receipt_id": "nope"}, exchange="", routing_key=INTAKE_QUEUE, declare=[intake_queue()]
    )
    publisher.close()
    receipts = []
    for token in voting["tokens"]:
        response = submit(
            api, voting, token, minimal_answers(api, voting, token), key=str(uuid.uuid4())
        )
        receipts.append((token, response.json()["receipt_id"]))
    for token, receipt in receipts:
        wait_for(
            lambda t=token, r=receipt: (
                api.request("GET", f"/api/v1/receipts/{r}", token=t).json()["status"] == "recorded"
            ),
            message="the good submissions",
        )
    dead = wait_for(lambda: show(amqp_uri, f"{INTAKE_QUEUE}.dlq"), message="the dead letter")
    assert dead[0]["reason"] == "invalid" and dead[0]["body"] == {"receipt_id": "nope"}
    # Submissions hold a resident id and answers: their dead letters expire (14 days).
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        message = channel.basic_get(f"{INTAKE_QUEUE}.dlq", no_ack=False)
        assert message.properties["expiration"] == str(14 * 24 * 3600 * 1000)
        channel.basic_reject(message.delivery_tag, requeue=True)


def answered_small_poll(api, service_config):
    """Utrecht, a poll for wijk West, twelve residents of one buurt and three of another who
    answered; returns the admin token, the poll and the residents' ids."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    admin = api.staff_token(UTRECHT, "admin")
    poll = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={
            "template_id": "veiligheidsgevoel",
            "audience": {"kind": "areas", "area_codes": ["WK034401"]},
        },
    ).json()
    assert (
        api.request("GET", f"/admin/v1/polls/{poll['id']}/results", token=admin).status_code == 409
    )
    api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)
    voting = {"poll": poll}
    receipts = []
    for buurt, n in {"BU03440111": 12, "BU03440112": 3}.items():
        for i in range(n):
            token = resident_token(
                api,
                municipality=UTRECHT,
                buurt=buurt,
                age_band=("25_44", "45_64", "65_plus")[i % 3],
                sex=("man", "vrouw")[i % 2],
            )
            wait_for(
                lambda t=token: api.request("GET", "/api/v1/polls", token=t).json(),
                message="the poll for the resident",
            )
            answers = {**minimal_answers(api, voting, token), "veilig_buurt": 4 if i % 3 else 2}
            receipts.append(
                (
                    token,
                    submit(api, voting, token, answers, key=str(uuid.uuid4())).json()["receipt_id"],
                )
            )
    for token, receipt in receipts:
        wait_for(
            lambda t=token, r=receipt: (
                api.request("GET", f"/api/v1/receipts/{r}", token=t).json()["status"] == "recorded"
            ),
            message="every submission recorded",
        )
    residents = [jwt.decode(t, options={"verify_signature": False})["sub"] for t, _ in receipts]
    return admin, poll, residents


def test_results_count_what_was_submitted_and_hide_small_groups(api, service_config):
    """Twelve residents of one buurt and three of another: the small buurt is hidden, and so
    is the other buurt of that wijk, else it could be recovered by subtraction."""
    admin, poll, _ = answered_small_poll(api, service_config)
    results = api.request("GET", f"/admin/v1/polls/{poll['id']}/results", token=admin).json()
    areas = {a["code"]: a for a in results["areas"]}
    assert areas["GM0344"]["respondents"] == 15 and areas["WK034401"]["respondents"] == 15
    assert areas["BU03440112"]["suppressed"] and areas["BU03440112"]["respondents"] is None
    assert areas["BU03440111"]["suppressed"]  # 15 - 12 would give the small buurt away
    question = next(q for q in results["questions"] if q["id"] == "veilig_buurt")
    counted = {o["option"]: o["count"] for o in question["areas"]["GM0344"]["options"]}
    # Five said "2": fewer than k, hidden; then "4" too, or 15 minus the rest would give it.
    assert counted == {"1": 0, "2": None, "3": 0, "4": None, "5": 0}
    assert question["areas"]["BU03440112"] == {"suppressed": True}
    assert "WK034401" in results["weighting"]
    # Passed on as JSON text (not projected per request): the document must describe it.
    documented = "/admin/v1/polls/{poll_id}/results"
    assert_documented(api, "GET", documented, results)
    # The view of invited panel members who did not move (issue 15, item 14); nothing else.
    url = f"/admin/v1/polls/{poll['id']}/results"
    panel = api.request("GET", url + "?respondents=panel", token=admin)
    assert panel.status_code == 200 and panel.json()["respondents"] == "panel"
    assert_documented(api, "GET", documented, panel.json())
    wrong = api.request("GET", url + "?respondents=nobody", token=admin)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "query.respondents"


def test_exports_hide_what_the_results_hide(api, service_config):
    """The CSV and XLSX downloads carry the results' figures: nothing below k, no resident."""
    admin, poll, residents = answered_small_poll(api, service_config)
    results = api.request("GET", f"/admin/v1/polls/{poll['id']}/results", token=admin).json()
    shown = {
        (q["id"], code, o["option"]): o["count"]
        for q in results["questions"]
        if "options" in q
        for code, a in q["areas"].items()
        for o in a.get("options", [])
    }
    csv_reply = api.request("GET", f"/admin/v1/polls/{poll['id']}/results.csv", token=admin)
    xlsx_reply = api.request("GET", f"/admin/v1/polls/{poll['id']}/results.xlsx", token=admin)
    assert csv_reply.status_code == 200 and xlsx_reply.status_code == 200
    assert csv_reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert xlsx_reply.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    for reply, ext in ((csv_reply, "csv"), (xlsx_reply, "xlsx")):
        disposition = reply.headers["Content-Disposition"]
        assert disposition.startswith("attachment; filename=") and poll["id"] in disposition
        assert disposition.endswith(f'.{ext}"')
        for resident in residents:
            assert resident.encode() not in reply.content

    text = csv_reply.content.decode("utf-8-sig")
    assert not any(r in text for r in residents)
    meta, _, table = text.partition("\r\n\r\n")
    assert dict(csv.reader(io.StringIO(meta), delimiter=";"))["municipality"] == "Utrecht"
    csv_rows = list(csv.DictReader(io.StringIO(table), delimiter=";"))
    book = openpyxl.load_workbook(io.BytesIO(xlsx_reply.content))
    header, *values = list(book["Resultaten"].iter_rows(values_only=True))
    xlsx_rows = [dict(zip(header, v, strict=True)) for v in values]
    assert len(csv_rows) == len(xlsx_rows) > 0
    k = results["k"]
    for c, x in zip(csv_rows, xlsx_rows, strict=True):
        assert c["suppressed"] == ("true" if x["suppressed"] else "false")
        if x["suppressed"]:
            assert c["n"] == "" and x["n"] is None and x["percent"] is None
            assert x["weighted_percent"] is None and x["mean"] is None
            continue
        if x["option"] != "mean" and x["breakdown"] == "main":
            n = shown[(x["question_id"], x["area_code"], x["option"])]
            assert x["n"] == n == (int(c["n"]) if c["n"] else None)
        if x["option"] != "mean":  # the splits per kind and channel too (issue 14)
            assert x["n"] == (int(c["n"]) if c["n"] else None)
            assert x["n"] == 0 or x["n"] >= k  # nothing below k
        # Areas of the audience are listed answered or not (docs/suppression.md): 0 is shown.
        assert x["respondents"] in (None, 0) or x["respondents"] >= k
    # The small buurt, and its sibling, are hidden in both formats.
    hidden = {r["area_code"] for r in xlsx_rows if r["suppressed"] and r["respondents"] is None}
    assert {"BU03440111", "BU03440112"} <= hidden


@pytest.fixture
def intake(container_factory, service_config):
    """polls and responses running; responses retries quickly and often."""
    from services.polls.service import PollsService
    from services.responses.service import ResponsesService

    container_factory(PollsService, service_config("polls", OUTBOX_POLL_INTERVAL=0.1)).start()
    container_factory(
        ResponsesService,
        service_config("responses", OUTBOX_POLL_INTERVAL=0.1, RETRY_DELAYS=[0.2] * 60),
    ).start()
    return service_config("polls")


def submission(poll_id: str) -> dict:
    return {
        "receipt_id": str(uuid.uuid4()),
        "poll_id": poll_id,
        "answers": {},
        "submitted_at": datetime.now(UTC).isoformat(),
        "resident": {
            "id": str(uuid.uuid4()),
            "municipality_code": UTRECHT,
            "wijk_code": "WK034401",
            "buurt_code": "BU03440111",
        },
    }


def receipt_status(config, receipt_id: str) -> str | None:
    with ClusterRpcProxy(config) as rpc:
        try:
            return rpc.responses.receipt(receipt_id)["status"]
        except NotFound:
            return None


def test_unknown_poll_at_intake_is_retried_until_responses_knows_the_poll(intake, amqp_uri):
    """The gateway accepted it (the poll was open there); responses had not processed
    poll_published yet. It used to be rejected for good as unknown_poll."""
    from services.responses.service import RECORDED

    with ClusterRpcProxy(intake) as rpc:
        poll = rpc.polls.create_poll(UTRECHT, {"template_id": "veiligheidsgevoel"})  # a draft
    deferred = RECORDED.labels("unknown_poll")._value.get()
    body = submission(poll["id"])
    publisher = ConfirmingPublisher(amqp_uri)
    publisher.publish(body, exchange="", routing_key=INTAKE_QUEUE, declare=[intake_queue()])
    publisher.close()
    wait_for(
        lambda: RECORDED.labels("unknown_poll")._value.get() >= deferred + 2,
        message="the submission tried twice while the poll is unknown",
    )
    assert receipt_status(intake, body["receipt_id"]) is None  # not rejected: still pending
    with ClusterRpcProxy(intake) as rpc:
        rpc.polls.publish_poll(UTRECHT, poll["id"])
    wait_for(
        lambda: receipt_status(intake, body["receipt_id"]) == "recorded",
        timeout=30,
        message="the submission recorded once the poll is known",
    )
    assert show(amqp_uri, f"{INTAKE_QUEUE}.dlq") == []


def test_undecodable_intake_messages_are_dead_lettered_and_intake_goes_on(intake, amqp_uri):
    from kombu import Connection, Producer

    with ClusterRpcProxy(intake) as rpc:
        poll = rpc.polls.create_poll(UTRECHT, {"template_id": "veiligheidsgevoel"})
        rpc.polls.publish_poll(UTRECHT, poll["id"])
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.channel())
        for raw, content_type in (
            (b"\xff\xfe{not json", "application/json"),
            (b"\x00\x01\x02 garbage", "application/octet-stream"),
        ):
            producer.publish(
                raw,
                routing_key=INTAKE_QUEUE,
                content_type=content_type,
                content_encoding="binary",
                declare=[intake_queue()],
            )
    body = submission(poll["id"])
    publisher = ConfirmingPublisher(amqp_uri)
    publisher.publish(body, exchange="", routing_key=INTAKE_QUEUE, declare=[intake_queue()])
    publisher.close()
    wait_for(
        lambda: receipt_status(intake, body["receipt_id"]) == "recorded",
        timeout=30,
        message="the submission behind the garbage recorded",
    )
    dead = wait_for(
        lambda: (found := show(amqp_uri, f"{INTAKE_QUEUE}.dlq")) and len(found) >= 2 and found,
        timeout=30,  # once over 10 s in a full run under load (a dead-letter publish retried)
        message="both undecodable messages dead-lettered",
    )
    assert [d["reason"] for d in dead] == ["undecodable", "undecodable"]
    assert dead[0]["body"]["content_type"] == "application/json"


def test_responses_holds_each_municipalitys_k_and_asks_panel_only_for_one_it_never_heard_of(
    api, service_config, engines
):
    """A results read is one RPC: responses keeps k (and the name, for exports) from panel's
    municipality_changed; a municipality it has not heard of is asked of panel once."""

    def held(code):
        with engines["responses"].connect() as conn:
            row = conn.execute(
                sa.text("SELECT name, min_cell_size FROM municipalities WHERE code = :c"),
                {"c": code},
            ).one_or_none()
        return tuple(row) if row else None

    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality(
            {"code": UTRECHT, "name": "Utrecht", "settings": {"min_cell_size": 7}}
        )
        wait_for(lambda: held(UTRECHT) == ("Utrecht", 7), message="k from the event")
        rpc.panel.update_settings(UTRECHT, {"min_cell_size": 12})
        wait_for(lambda: held(UTRECHT) == ("Utrecht", 12), message="the new k from the event")

        with engines["responses"].begin() as conn:  # as if it had never been announced
            conn.execute(sa.text("DELETE FROM municipalities"))
        with pytest.raises(NotFound):  # no such poll, but k was needed first
            rpc.responses.results(UTRECHT, str(uuid.uuid4()))
        assert held(UTRECHT) == ("Utrecht", 12)


def test_results_of_a_poll_that_does_not_exist_are_not_found(api, service_config):
    """(A draft's are a conflict: answered_small_poll.) Either way the gateway asks responses
    first, and polls only when responses does not know the poll."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
    admin = api.staff_token(UTRECHT, "admin")
    missing = api.request("GET", f"/admin/v1/polls/{uuid.uuid4()}/results", token=admin)
    assert missing.status_code == 404
    missing_csv = api.request("GET", f"/admin/v1/polls/{uuid.uuid4()}/results.csv", token=admin)
    assert missing_csv.status_code == 404
