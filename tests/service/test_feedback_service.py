"""feedback against the real broker and database, with the real panel (settings, staff) and
responses (key figures) beside it; polls' events are published onto the test vhost as polls
publishes them. The clock of the feedback container is moved, never slept on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook, entrypoint_waiter
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from services.common.clock import Clock
from services.common.errors import Conflict, InvalidInput, NotFound
from services.feedback.reactions import reactor_key
from services.feedback.service import FeedbackService
from services.panel.models import Staff
from services.panel.service import PanelService
from services.responses.service import ResponsesService
from tests.conftest import wait_for
from tests.support import infra
from tests.support.listeners import recorder
from tests.support.notify import GM, poll_payload, publish_event

OTHER = "GM0363"
DRAFT = {
    "title": "Meer licht op de fietspaden",
    "heard": "U gaf aan dat u zich 's avonds onveilig voelt op de fietspaden langs het park. " * 4,
    "plan": "Stadsbeheer plaatst dit najaar extra lantaarnpalen.",
}
MEASURE = {
    "title": "Extra lantaarnpalen",
    "owner": "Stadsbeheer",
    "area_codes": ["WK034401"],
    "expected_date": "2026-11-30",
}


@pytest.fixture
def env(container_factory, service_config, engines, amqp_uri):
    panel_config = service_config("panel")
    container_factory(PanelService, panel_config).start()
    container_factory(ResponsesService, service_config("responses")).start()
    config = service_config(
        "feedback",
        OUTBOX_POLL_INTERVAL=0.1,
        OVERDUE_CHECK_INTERVAL=0.2,
        PANEL_CACHE_SECONDS=0,
        CLOCK_ADJUSTABLE=True,
    )
    container = container_factory(FeedbackService, config)
    container.start()
    cls, events = recorder("feedback", "feedback_published", "measure_updated")
    container_factory(cls, service_config("feedback")).start()
    with ClusterRpcProxy(panel_config) as rpc:
        rpc.panel.create_municipality({"code": GM, "name": "Utrecht"})
        rpc.panel.create_municipality({"code": OTHER, "name": "Amsterdam"})
    return {"config": config, "container": container, "events": events, "amqp": amqp_uri}


def rpc_call(env: dict[str, Any], method: str, *args: Any) -> Any:
    with ClusterRpcProxy(env["config"], timeout=20) as rpc:
        return getattr(rpc.feedback, method)(*args)


def open_poll(env: dict[str, Any], **audience: Any) -> dict[str, Any]:
    payload = poll_payload(audience=audience or {"kind": "areas", "area_codes": ["WK034401"]})
    publish_event(env["amqp"], "poll_published", payload)
    wait_for(
        lambda: any(p["poll_id"] == payload["poll_id"] for p in rpc_call(env, "list_feedback", GM)),
        message="the poll in feedback's projection",
    )
    return payload


def close_poll(env: dict[str, Any], poll_id: str) -> None:
    publish_event(
        env["amqp"],
        "poll_closed",
        {
            "poll_id": poll_id,
            "municipality_code": GM,
            "closed_at": datetime.now(UTC).isoformat(),
            "reason": "manual",
        },
    )
    wait_for(
        lambda: next(
            p["poll_closed_at"]
            for p in rpc_call(env, "list_feedback", GM)
            if p["poll_id"] == poll_id
        ),
        message="poll_closed in feedback's projection",
    )


def test_draft_publish_and_measures(env, engines):
    poll = open_poll(env)
    pid = poll["poll_id"]
    assert rpc_call(env, "list_feedback", GM)[0]["status"] == "none"
    with pytest.raises(NotFound):
        rpc_call(env, "get_feedback", GM, pid)

    # A draft while the poll is open, with key figures from the real responses service.
    with pytest.raises(InvalidInput) as caught:
        rpc_call(
            env, "save_draft", GM, pid, {**DRAFT, "key_figures": [{"question_id": "nope"}]}, "e@x"
        )
    assert caught.value.errors[0]["field"] == "key_figures[0].question_id"
    view = rpc_call(
        env,
        "save_draft",
        GM,
        pid,
        {**DRAFT, "key_figures": [{"question_id": "veilig_buurt", "area_code": "WK034401"}]},
        "editor@utrecht.nl",
    )
    assert view["status"] == "draft" and view["poll_title"] == "Veilig in de buurt"
    (figure,) = view["key_figures"]
    assert figure["question_id"] == "veilig_buurt" and figure["n"] == 0  # nobody answered yet
    measure = rpc_call(env, "add_measure", GM, pid, MEASURE)
    assert measure["status"] == "planned" and measure["history"][0]["status"] == "planned"

    # Another municipality sees nothing of it.
    for method, args in [
        ("get_feedback", (OTHER, pid)),
        ("save_draft", (OTHER, pid, DRAFT, "x")),
        ("publish", (OTHER, pid, "x")),
        ("add_measure", (OTHER, pid, MEASURE)),
        ("update_measure", (OTHER, measure["measure_id"], {"owner": "x"})),
        ("change_measure_status", (OTHER, measure["measure_id"], "done", None, "x")),
    ]:
        with pytest.raises(NotFound):
            rpc_call(env, method, *args)
    assert rpc_call(env, "list_feedback", OTHER) == []
    with pytest.raises(InvalidInput) as caught:
        rpc_call(env, "add_measure", GM, pid, {**MEASURE, "area_codes": ["WK036301"]})
    assert caught.value.errors[0]["field"] == "area_codes[0]"

    with pytest.raises(Conflict) as caught:
        rpc_call(env, "publish", GM, pid, "editor@utrecht.nl")
    assert caught.value.errors[0]["code"] == "poll_not_closed"
    assert "closed" in caught.value.message

    close_poll(env, pid)
    first = rpc_call(env, "publish", GM, pid, "editor@utrecht.nl")
    again = rpc_call(env, "publish", GM, pid, "editor@utrecht.nl")
    assert first == again and first["status"] == "published"
    with pytest.raises(Conflict) as caught:
        rpc_call(env, "save_draft", GM, pid, DRAFT, "e@x")
    assert caught.value.errors[0]["code"] == "feedback_published"

    # Measures still change after publishing; each status change is announced once.
    mid = measure["measure_id"]
    with pytest.raises(Conflict):
        rpc_call(env, "change_measure_status", GM, mid, "planned", None, "e@x")
    with pytest.raises(InvalidInput) as caught:
        rpc_call(env, "change_measure_status", GM, mid, "dropped", None, "e@x")
    assert caught.value.errors[0]["field"] == "note"
    updated = rpc_call(env, "change_measure_status", GM, mid, "in_progress", "Gestart", "e@x")
    assert [h["status"] for h in updated["history"]] == ["planned", "in_progress"]
    assert rpc_call(env, "update_measure", GM, mid, {"owner": "Wijkteam West"})["owner"] == (
        "Wijkteam West"
    )
    done = rpc_call(env, "change_measure_status", GM, mid, "done", None, "e@x")
    with pytest.raises(Conflict) as caught:
        rpc_call(env, "change_measure_status", GM, mid, "dropped", "toch niet", "e@x")
    assert caught.value.errors[0]["code"] == "invalid_transition"
    assert done["status"] == "done"

    events = env["events"]
    wait_for(
        lambda: len([e for e in events if e.name == "measure_updated"]) == 2,
        message="two measure_updated events",
    )
    published = [e for e in events if e.name == "feedback_published"]
    assert len(published) == 1
    assert published[0].payload["summary"] and len(published[0].payload["summary"]) <= 200
    assert [e.payload["status"] for e in events if e.name == "measure_updated"] == [
        "in_progress",
        "done",
    ]
    with engines["feedback"].connect() as conn:
        assert conn.execute(
            sa.text("SELECT event, count(*) FROM outbox GROUP BY event ORDER BY event")
        ).all() == [("feedback_published", 1), ("measure_updated", 2)]

    # Residents and the public see the published feedback, without staff names.
    (item,) = rpc_call(env, "resident_feed", GM, "BU03440111", "WK034401")
    assert item["concerns_my_area"] and (item["measures_total"], item["measures_done"]) == (1, 1)
    timeline = rpc_call(env, "public_timeline", GM)
    assert timeline["items"][0]["measures"][0]["status"] == "done"
    assert "utrecht.nl" not in str(timeline) and "e@x" not in str(timeline)
    figures = rpc_call(env, "loop_figures", GM)
    assert (figures["closed_polls"], figures["with_feedback"]) == (1, 1)


def test_one_reaction_per_resident_and_erasure_on_leaving(env, engines):
    poll = open_poll(env)
    pid = poll["poll_id"]
    view = rpc_call(env, "save_draft", GM, pid, DRAFT, "e@x")
    fid = view["feedback_id"]
    resident, other = str(uuid.uuid4()), str(uuid.uuid4())
    with pytest.raises(NotFound):  # a draft is not there for residents
        rpc_call(env, "react", GM, fid, resident, "BU03440111", "WK034401", True, None)
    close_poll(env, pid)
    rpc_call(env, "publish", GM, pid, "e@x")

    rpc_call(env, "react", GM, fid, resident, "BU03440111", "WK034401", True, "  Top  ")
    mine = rpc_call(env, "react", GM, fid, resident, "BU03440111", "WK034401", False, "Toch niet")
    assert mine == {"useful": False, "comment": "Toch niet"}
    rpc_call(env, "react", GM, fid, other, "BU03440111", "WK034401", True, None)
    with pytest.raises(NotFound):
        rpc_call(env, "react", OTHER, fid, resident, "BU03630111", "WK036301", True, None)
    with pytest.raises(InvalidInput) as caught:
        rpc_call(env, "react", GM, fid, resident, None, None, True, "x" * 501)
    assert caught.value.errors[0]["field"] == "comment"
    detail = rpc_call(env, "resident_detail", GM, fid, resident)
    assert detail["my_reaction"] == {"useful": False, "comment": "Toch niet"}
    summary = rpc_call(env, "reactions", GM, pid)
    assert summary["n"] is None and summary["suppressed"]  # 2: fewer than k = 10
    assert summary["comments"] == [] and all(a["suppressed"] for a in summary["per_area"])
    with pytest.raises(NotFound):
        rpc_call(env, "reactions", OTHER, pid)

    key = reactor_key(env["config"]["REACTION_KEY_SECRET"].encode(), resident)
    engine = engines["feedback"]
    # Stored under the key only (the outbox too).
    assert infra.tables_holding(engine, key) and not infra.tables_holding(engine, resident)
    publish_event(
        env["amqp"],
        "resident_left",
        {
            "resident_id": resident,
            "municipality_code": GM,
            "left_at": datetime.now(UTC).isoformat(),
        },
    )
    wait_for(lambda: not infra.tables_holding(engine, key), message="the erasure")
    for gone in (key, resident, "Toch niet"):
        assert not infra.tables_holding(engine, gone), gone
    assert rpc_call(env, "resident_detail", GM, fid, resident)["my_reaction"] is None


def test_two_staff_reads_around_one_reaction_show_the_same_version(env, engines):
    """Regression (reactions over time): staff read the reactions one reading at a time, so a
    read before and after one new reaction showed the gemeente's, the wijk's and the buurt's
    counts move by one — that resident's area and answer. Now the second read serves the
    released version again: around one new reaction, a replaced one (useful → not useful) and
    a resident who left; a new version comes once the reactions since pass the test."""
    poll = open_poll(env)
    pid = poll["poll_id"]
    fid = rpc_call(env, "save_draft", GM, pid, DRAFT, "e@x")["feedback_id"]
    close_poll(env, pid)
    rpc_call(env, "publish", GM, pid, "e@x")
    residents = [str(uuid.uuid4()) for _ in range(20)]

    def react(resident: str, useful: bool, comment: str | None = None) -> None:
        rpc_call(env, "react", GM, fid, resident, "BU03440111", "WK034401", useful, comment)

    for resident in residents:
        react(resident, True, "Duidelijk verhaal.")
    first = rpc_call(env, "reactions", GM, pid)
    assert (first["version"], first["n"], first["useful"]) == ({"seq": 1}, 20, 20)
    assert len(first["comments"]) == 20

    newcomer = str(uuid.uuid4())
    react(newcomer, True, "Eindelijk!")
    assert rpc_call(env, "reactions", GM, pid) == {**first, "comments": ANY_ORDER(first)}
    react(residents[0], False, "Toch niet.")  # replaced: useful → not useful
    assert rpc_call(env, "reactions", GM, pid) == {**first, "comments": ANY_ORDER(first)}
    publish_event(
        env["amqp"],
        "resident_left",
        {
            "resident_id": residents[1],
            "municipality_code": GM,
            "left_at": datetime.now(UTC).isoformat(),
        },
    )
    key = reactor_key(env["config"]["REACTION_KEY_SECRET"].encode(), residents[1])
    wait_for(lambda: not infra.tables_holding(engines["feedback"], key), message="the erasure")
    held = rpc_call(env, "reactions", GM, pid)
    assert {**held, "comments": []} == {**first, "comments": []}
    # The erased resident's comment is gone at once; the others are the version's.
    assert len(held["comments"]) == 19
    texts = {c["text"] for c in held["comments"]}
    assert "Toch niet." not in texts and "Eindelijk!" not in texts

    # 19 useful and 1 not useful now, against 20 and 0 released: 11 useful and 9 not useful
    # more make the reactions since (20: 10 useful, 10 not useful) pass with nothing hidden.
    for _ in range(11):
        react(str(uuid.uuid4()), True)
    for _ in range(9):
        react(str(uuid.uuid4()), False)
    second = rpc_call(env, "reactions", GM, pid)
    assert second["version"] == {"seq": 2}
    assert (second["n"], second["useful"], second["not_useful"]) == (40, 30, 10)
    assert "Toch niet." in {c["text"] for c in second["comments"]}
    assert rpc_call(env, "reactions", GM, pid)["version"] == {"seq": 2}


def test_loop_figures_count_reactions_only_as_their_released_versions_show_them(env):
    """Regression: the loop figures (and the ``…_share_useful`` gauge) counted the reactions
    table live, so two reads around one reaction said whether that resident found the
    feedback useful. Now they are the sum of each feedback's latest released version: nothing
    before a version, the same figure around one new reaction, and a new figure only with a
    new version."""
    poll = open_poll(env)
    pid = poll["poll_id"]
    fid = rpc_call(env, "save_draft", GM, pid, DRAFT, "e@x")["feedback_id"]
    close_poll(env, pid)
    rpc_call(env, "publish", GM, pid, "e@x")

    def react(useful: bool) -> None:
        rpc_call(env, "react", GM, fid, str(uuid.uuid4()), "BU03440111", "WK034401", useful, None)

    def loop() -> tuple[Any, ...]:
        f = rpc_call(env, "loop_figures", GM)
        return (
            f["reactions"],
            f["share_useful"],
            f.get("reactions_feedbacks_counted"),
            f.get("reactions_feedbacks_hidden"),
        )

    def gauge() -> float | None:
        with entrypoint_hook(env["container"], "check_overdue") as sweep:
            sweep()
        return REGISTRY.get_sample_value("buurtpeil_feedback_share_useful", {"municipality": GM})

    for i in range(20):
        react(i % 2 == 0)
    assert loop() == (0, None, 0, 0)  # no version released yet: nothing counted
    assert rpc_call(env, "reactions", GM, pid)["version"] == {"seq": 1}
    assert loop() == (20, 0.5, 1, 0)
    assert gauge() == 0.5

    react(True)  # one reaction between two reads
    assert rpc_call(env, "reactions", GM, pid)["version"] == {"seq": 1}  # held
    assert loop() == (20, 0.5, 1, 0)
    assert gauge() == 0.5

    for useful in [True] * 9 + [False] * 10:  # the reactions since (20) pass: version 2
        react(useful)
    assert rpc_call(env, "reactions", GM, pid)["version"] == {"seq": 2}
    assert loop() == (40, 0.5, 1, 0)


def ANY_ORDER(view: dict[str, Any]) -> Any:  # noqa: N802 - reads as a value in the asserts
    """The view's comments, whatever their (shuffled) order."""

    class Same:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, list) and sorted(map(str, other)) == sorted(
                map(str, view["comments"])
            )

    return Same()


REGION = "RG03440001"


def frozen(version: int, buurten: list[str]) -> dict[str, Any]:
    return {"code": REGION, "name": "Zuilen", "version": version, "buurt_codes": buurten}


def test_open_measures_per_region_on_its_newest_version_whatever_order_polls_arrive_in(
    env, engines
):
    # The later poll froze version 2 (a buurt of North, BU03440211); the earlier one version 1
    # (a buurt of West), and its event comes second and twice — as a retry or a replay could.
    later = open_poll(
        env,
        kind="areas",
        area_codes=["BU03440211"],
        region_codes=[REGION],
        regions=[frozen(2, ["BU03440211"])],
    )
    earlier_audience = {"kind": "municipality", "region_codes": [REGION]}
    earlier = open_poll(env, **earlier_audience, regions=[frozen(1, ["BU03440111"])])
    replayed = publish_event(env["amqp"], "poll_published", earlier)

    def handled() -> bool:
        with engines["feedback"].connect() as conn:
            return bool(
                conn.execute(
                    sa.text("SELECT count(*) FROM processed_events WHERE event_id = :e"),
                    {"e": replayed["event_id"]},
                ).scalar()
            )

    wait_for(handled, message="the repeated poll_published handled")
    with engines["feedback"].connect() as conn:
        versions = conn.execute(
            sa.text("SELECT code, version, buurt_codes FROM region_versions ORDER BY version")
        ).all()
    assert versions == [(REGION, 1, ["BU03440111"]), (REGION, 2, ["BU03440211"])]

    for poll, measures in (
        # North holds the newest version's buurt; BU03440111 was only in version 1.
        (earlier, [["WK034402"], ["BU03440111"]]),
        # Naming no area: its poll's audience, which named the region.
        (later, [[]]),
    ):
        pid = poll["poll_id"]
        rpc_call(env, "save_draft", GM, pid, DRAFT, "e@x")
        for codes in measures:
            rpc_call(env, "add_measure", GM, pid, {**MEASURE, "area_codes": codes})
        close_poll(env, pid)
        rpc_call(env, "publish", GM, pid, "e@x")
    counts = rpc_call(env, "open_measures_by_area", GM)
    assert counts[REGION] == 2
    assert (counts["WK034402"], counts["WK034401"], counts[GM]) == (2, 1, 3)
    assert rpc_call(env, "open_measures_by_area", OTHER) == {}


def add_staff(engine: sa.Engine, email: str, role: str, status: str = "active") -> None:
    with Session(engine) as session, session.begin():
        session.add(
            Staff(
                municipality_code=GM,
                email=email,
                role=role,
                status=status,
                created_at=datetime.now(UTC),
            )
        )


def sweeps(container: Any, count: int) -> None:
    """Wait for ``count`` complete overdue sweeps of this container."""
    for _ in range(count):
        with entrypoint_waiter(container, "check_overdue", timeout=15):
            pass


def test_overdue_after_the_due_days_with_one_reminder(env, engines, smtp_sink, container_factory):
    for email, role, status in [
        ("redacteur@utrecht.nl", "editor", "active"),
        ("beheerder@utrecht.nl", "admin", "active"),
        ("kijker@utrecht.nl", "viewer", "active"),
        ("oud@utrecht.nl", "editor", "disabled"),
    ]:
        add_staff(engines["panel"], email, role, status)
    poll = open_poll(env)
    pid = poll["poll_id"]
    close_poll(env, pid)
    container = env["container"]
    sweeps(container, 2)
    assert rpc_call(env, "overdue", GM) == []
    assert smtp_sink.messages == []

    Clock.of(container).advance(days=31)
    (late,) = rpc_call(env, "overdue", GM)
    assert late["poll_id"] == pid and late["days_overdue"] == 1
    assert rpc_call(env, "list_feedback", GM)[0]["overdue"] is True
    wait_for(lambda: smtp_sink.messages, message="the reminder e-mail")
    sweeps(container, 2)
    (message,) = smtp_sink.messages
    assert sorted(smtp_sink.received[0].recipients) == [
        "beheerder@utrecht.nl",
        "redacteur@utrecht.nl",
    ]
    assert message["Subject"] == "Terugkoppeling 1 dag te laat: Veilig in de buurt"
    body = message.get_content()
    assert "Veilig in de buurt" in body and f"/polls/{pid}/feedback" in body

    from services.feedback.service import OVERDUE_POLLS

    assert OVERDUE_POLLS.labels(GM)._value.get() == 1

    # A restarted service (real time again, then moved on) does not remind a second time.
    container.stop()
    restarted = container_factory(FeedbackService, env["config"])
    restarted.start()
    Clock.of(restarted).advance(days=40)
    sweeps(restarted, 3)
    assert len(smtp_sink.messages) == 1
    with engines["feedback"].connect() as conn:
        assert conn.execute(
            sa.text("SELECT count(*), sum(recipients) FROM overdue_reminders")
        ).one() == (
            1,
            2,
        )
