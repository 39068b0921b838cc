"""Results per kind of participant and per channel against the real broker and database (issue
14): intake messages from residents, businesses and organisations, in the app, by e-mail link
and on paper, recorded by responses with their kind and channel; the results split by both,
residents' figures weighted and the others not, small groups hidden, and the CSV export split
the same way."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.amqp import ConfirmingPublisher
from services.common.intake import INTAKE_QUEUE, intake_queue, submission
from services.responses import exports
from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.panel import UTRECHT

K = 5
# (buurt, kind, channel, how many): West's two buurten; one holds two shops and nobody else.
WHO = [
    ("BU03440110", "resident", "app", 14),
    ("BU03440110", "resident", "link", 6),
    ("BU03440110", "resident", "paper", 5),
    ("BU03440111", "resident", "app", 12),
    ("BU03440111", "ondernemer", "link", 7),
    ("BU03440111", "organisatie", "paper", 6),
    ("BU03440112", "ondernemer", "app", 2),  # the buurt with two shops
]


@pytest.fixture
def intake(container_factory, service_config):
    """polls and responses running."""
    from services.polls.service import PollsService
    from services.responses.service import ResponsesService

    container_factory(PollsService, service_config("polls", OUTBOX_POLL_INTERVAL=0.1)).start()
    container_factory(
        ResponsesService,
        service_config("responses", OUTBOX_POLL_INTERVAL=0.1, RETRY_DELAYS=[0.2] * 60),
    ).start()
    return service_config("polls")


def message(poll: dict, buurt: str, kind: str, channel: str, i: int) -> dict:
    resident = {
        "id": str(uuid.uuid4()),
        "municipality_code": UTRECHT,
        "wijk_code": f"WK{buurt[2:8]}",
        "buurt_code": buurt,
        "age_band": ("25_44", "45_64", "65_plus")[i % 3],
        "sex": ("man", "vrouw")[i % 2],
        "self_selected": False,
    }
    if kind != "resident" or i % 2:  # absent means resident (messages queued before)
        resident["kind"] = kind
    body = submission(
        receipt_id=str(uuid.uuid4()),
        poll_id=poll["id"],
        answers=minimal_answers(poll["definition"]),
        submitted_at=datetime.now(UTC),
        resident=resident,
        channel=channel,
    )
    if channel == "app" and i % 2:
        del body["channel"]  # absent means the app
    return body


@pytest.mark.service
def test_answers_are_counted_per_kind_and_channel_and_small_groups_are_hidden(
    intake, amqp_uri, engines
):
    with ClusterRpcProxy(intake) as rpc:
        poll = rpc.polls.create_poll(UTRECHT, {"template_id": "veiligheidsgevoel"})
        rpc.polls.publish_poll(UTRECHT, poll["id"])
    bodies = [
        message(poll, buurt, kind, channel, i) for buurt, kind, channel, n in WHO for i in range(n)
    ]
    publisher = ConfirmingPublisher(amqp_uri)
    for body in bodies:
        publisher.publish(body, exchange="", routing_key=INTAKE_QUEUE, declare=[intake_queue()])
    publisher.close()
    stored = sa.text(
        "SELECT kind, channel, count(*) FROM responses WHERE poll_id = :p GROUP BY 1, 2"
    )

    def counted() -> dict:
        with engines["responses"].connect() as conn:
            return {(k, c): n for k, c, n in conn.execute(stored, {"p": poll["id"]})}

    wait_for(
        lambda: sum(counted().values()) == len(bodies),
        timeout=60,
        message="every submission recorded",
    )
    truth: Counter = Counter()
    for _, kind, channel, n in WHO:
        truth[(kind, channel)] += n
    assert counted() == dict(truth)

    with ClusterRpcProxy(intake) as rpc:
        doc = wait_for(
            lambda: _results(rpc, poll["id"]), timeout=60, message="the results released"
        )
    areas = {a["code"]: a for a in doc["areas"]}
    gm = areas[UTRECHT]
    assert gm["respondents"] == 52
    assert gm["kinds"] == {"resident": 37, "ondernemer": 9, "organisatie": 6}
    assert gm["channels"] == {"app": 28, "link": 13, "paper": 11}
    # The two shops: their count and their buurt's all participants are hidden (its residents,
    # none, are shown), and no split shows them: questions are not split per buurt.
    shops = areas["BU03440112"]
    assert shops["kinds"] == {"resident": 0, "ondernemer": None, "organisatie": None}
    assert shops["respondents"] is None and shops["channels"]["app"] is None
    q = next(q for q in doc["questions"] if "options" in q)
    for split in ("by_kind", "by_channel"):
        for per_area in q[split].values():
            assert set(per_area) <= {UTRECHT, *(a for a in areas if not a.startswith("BU"))}
    # An area's figures are the residents', weighted; businesses are their own rows.
    assert q["areas"][UTRECHT]["respondents"] == 37
    assert "effective_n" in q["areas"][UTRECHT]
    business = q["by_kind"]["ondernemer"][UTRECHT]
    assert business.get("suppressed") or business["respondents"] == 9
    assert q["by_kind"]["all"][UTRECHT]["respondents"] == 52
    assert q["by_channel"]["paper"][UTRECHT]["respondents"] == 11
    shown = [o for o in q["by_channel"]["paper"][UTRECHT]["options"] if o["count"]]
    assert shown and all(o["ci_low"] <= o["percent"] <= o["ci_high"] for o in shown)
    # Every shown count of every split is 0 or at least k.
    for split in ("by_kind", "by_channel"):
        for per_area in q[split].values():
            for figures in per_area.values():
                counts = [figures.get("respondents")]
                counts += [o["count"] for o in figures.get("options", [])]
                assert all(c is None or c == 0 or c >= K for c in counts), figures
    # The export (rendered as responses renders it; its RPC names the municipality, which
    # asks panel, not running here): the same split, hidden cells empty.
    body = exports.render(
        doc, poll["definition"], fmt="csv", municipality="Utrecht", generated_at=datetime.now(UTC)
    )
    text = body.decode("utf-8-sig")
    table = text.split("\r\n\r\n", 1)[1]
    rows = list(csv.DictReader(io.StringIO(table), delimiter=";"))
    groups = {(r["breakdown"], r["group"]) for r in rows}
    assert {("main", "resident"), ("kind", "ondernemer"), ("channel", "paper")} <= groups
    paper = [
        r
        for r in rows
        if (r["breakdown"], r["group"], r["area_code"]) == ("channel", "paper", UTRECHT)
    ]
    assert paper and all(r["respondents"] == "11" for r in paper if r["suppressed"] == "false")
    two_shops = [r for r in rows if r["area_code"] == "BU03440112"]
    # Only the residents' rows of that buurt (no split per buurt), and no one of them counts.
    assert two_shops and all(r["breakdown"] == "main" for r in two_shops)
    assert all(r["respondents"] in ("", "0") and r["n"] in ("", "0") for r in two_shops)


def _results(rpc, poll_id: str) -> dict | None:
    from services.common.errors import BeingComputed

    try:
        return rpc.responses.results(UTRECHT, poll_id, K)
    except BeingComputed:
        return None
