"""Results read while intake runs: one snapshot per read (issue 15, item 7)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import sessionmaker

from services.common.db import run_in_transaction
from services.common.errors import BeingComputed, InvalidInput, Unavailable
from services.common.outbox import add_events
from services.responses import intake, results
from services.responses.models import Poll
from services.responses.service import ResponsesService
from tests.conftest import wait_for

GM = "GM0344"
BUURTEN = ("BU03440111", "BU03440112", "BU03440211", "BU03440212")
DEFINITION = {
    "title": "Torn reads",
    "questions": [
        {
            "id": "q1",
            "type": "single_choice",
            "text": "Eén",
            "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
        },
        {
            "id": "q2",
            "type": "multiple_choice",
            "text": "Meer",
            "options": [{"id": "x", "label": "X"}, {"id": "y", "label": "Y"}],
        },
    ],
}


def submission(poll_id: str, rng: random.Random) -> dict:
    buurt = rng.choice(BUURTEN)
    return {
        "receipt_id": str(uuid.uuid4()),
        "poll_id": poll_id,
        "resident": {
            "id": str(uuid.uuid4()),
            "municipality_code": GM,
            "wijk_code": f"WK{buurt[2:8]}",
            "buurt_code": buurt,
            "age_band": rng.choice(("25_44", "45_64")),
            "sex": rng.choice(("man", "vrouw")),
            "self_selected": False,
        },
        "answers": {"q1": rng.choice("ab"), "q2": rng.sample(["x", "y"], rng.randint(1, 2))},
        "submitted_at": datetime.now(UTC).isoformat(),
    }


@pytest.mark.service
def test_results_read_during_intake_are_never_torn(container_factory, service_config, engines):
    """Regression: ``read_aggregates`` read respondents and counts in separate statements under
    READ COMMITTED, so an intake batch committed between them made a count exceed its total and
    the results RPC failed (500 at the gateway). Every read is now one snapshot. (A race: this
    one reads under load and may miss it; the test below proves the snapshot itself.)"""
    config = service_config("responses")
    container_factory(ResponsesService, config).start()
    poll_id, sessions = _open_poll(engines)
    rng = random.Random(7)
    done = threading.Event()

    def write() -> None:
        try:
            for _ in range(150):
                batch = [submission(poll_id, rng) for _ in range(5)]
                run_in_transaction(
                    sessions,
                    lambda s, batch=batch: intake.record_batch(
                        s,
                        batch,
                        secret=b"s",
                        emit_many=add_events,
                        today=lambda: datetime.now(UTC),
                    ),
                )
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    failures, served = [], 0
    with ClusterRpcProxy(config) as rpc:
        while not done.is_set() or served == 0:
            try:
                document = rpc.responses.results(GM, poll_id, 5)
            except BeingComputed:
                # A release longer than a reader waits (RESULTS_WAIT, on a loaded machine):
                # an answer, not a torn read; ask again.
                time.sleep(0.2)
                continue
            except RemoteError as exc:
                failures.append(str(exc))
                continue
            served += 1
            for question in document["questions"]:
                for code, area in question["areas"].items():
                    for option in area.get("options", []):
                        if option["count"] is not None and option["count"] > area["respondents"]:
                            failures.append(f"{question['id']} {code}: count above its total")
    writer.join()
    assert served > 10
    assert failures == []


def test_a_batch_committed_while_a_release_reads_is_not_seen_by_it(engines):
    """Regression for item 7 that does not depend on hitting a race: a release reads its
    counters as of its transaction's first statement, so an intake batch committed between
    that statement and the counter reads changes nothing it reads (under READ COMMITTED the
    counts of the new batch would meet the respondents of the old state: counts above totals)."""
    poll_id, sessions = _open_poll(engines)
    rng = random.Random(11)

    def record(n: int) -> None:
        batch = [submission(poll_id, rng) for _ in range(n)]
        run_in_transaction(
            sessions,
            lambda s: intake.record_batch(
                s, batch, secret=b"s", emit_many=add_events, today=lambda: datetime.now(UTC)
            ),
        )

    def respondents(aggregates) -> int:  # in the gemeente, answering anything
        return sum(aggregates.base["*"][GM].values())

    record(5)
    with sessions() as session, session.begin():
        results.begin_snapshot(session)
        # The first statement: the snapshot.
        poll = results.load_poll(session, municipality_code=GM, poll_id=poll_id)
        record(7)  # committed meanwhile by another transaction
        inside = results.read_aggregates(session, poll)
    with sessions() as session, session.begin():
        results.begin_snapshot(session)
        after = results.read_aggregates(
            session, results.load_poll(session, municipality_code=GM, poll_id=poll_id)
        )
    assert (respondents(inside), respondents(after)) == (5, 12)


def _open_poll(engines):
    """An open poll for the whole gemeente in responses' database: (its id, a sessionmaker)."""
    poll_id = str(uuid.uuid4())
    sessions = sessionmaker(engines["responses"], expire_on_commit=False)
    run_in_transaction(
        sessions,
        lambda s: s.add(
            Poll(
                id=uuid.UUID(poll_id),
                municipality_code=GM,
                version=1,
                definition=DEFINITION,
                audience={"kind": "municipality", "area_codes": []},
                opens_at=datetime.now(UTC),
                closes_at=None,
                closed_at=None,
            )
        ),
    )
    return poll_id, sessions


def _poll_with_answers(engines, people):
    """A published poll in responses' database and ``people`` recorded by intake: (buurt,
    self_selected, recently_moved or None when the message predates the field)."""
    poll_id, sessions = _open_poll(engines)
    rng = random.Random(3)
    batch = []
    for buurt, selected, moved in people:
        message = submission(poll_id, rng)
        message["resident"].update(buurt_code=buurt, wijk_code=f"WK{buurt[2:8]}")
        message["resident"]["self_selected"] = selected
        if moved is not None:
            message["resident"]["recently_moved"] = moved
        batch.append(message)
    run_in_transaction(
        sessions,
        lambda s: intake.record_batch(
            s, batch, secret=b"s", emit_many=add_events, today=lambda: datetime.now(UTC)
        ),
    )
    return poll_id, sessions


@pytest.mark.service
def test_results_can_leave_out_self_selected_and_recently_moved(
    container_factory, service_config, engines
):
    """Regression (issue 15, items 1d and 14): self-selected sign-ups and residents who moved
    were pooled with invited members with no split. Intake keeps ``recently_moved`` in the
    stratum (absent = false), and results come in two views suppressed as one system:
    respondents=all and respondents=panel."""
    config = service_config("responses")
    container_factory(ResponsesService, config).start()
    people = [(BUURTEN[0], False, False)] * 30 + [(BUURTEN[1], False, None)] * 30
    people += [(BUURTEN[0], True, False)] * 12 + [(BUURTEN[1], False, True)] * 11
    poll_id, _ = _poll_with_answers(engines, people)
    with engines["responses"].connect() as conn:
        moved = conn.execute(
            sa.text(
                "SELECT sum(n) FROM respondents WHERE poll_id = :p AND question_id = '*' "
                "AND area_code = :gm AND recently_moved"
            ),
            {"p": poll_id, "gm": GM},
        ).scalar()
    assert moved == 11
    with ClusterRpcProxy(config) as rpc:
        everyone = rpc.responses.results(GM, poll_id, 10)
        panel = rpc.responses.results(GM, poll_id, 10, "panel")
        with pytest.raises(InvalidInput, match="respondents"):
            rpc.responses.results(GM, poll_id, 10, "members")
    gm_all = next(a for a in everyone["areas"] if a["code"] == GM)
    gm_panel = next(a for a in panel["areas"] if a["code"] == GM)
    assert (everyone["respondents"], panel["respondents"]) == ("all", "panel")
    assert gm_all["respondents"] == 83 and gm_panel["respondents"] == 60
    assert (gm_all["self_selected"], gm_all["recently_moved"]) == (12, 11)


@pytest.mark.service
def test_a_published_poll_keeps_the_k_of_its_first_release(
    container_factory, service_config, engines
):
    """Regression (issue 15, item 1c): the municipality's k was applied to every read, so the
    same poll read at k = 10 and k = 15 could be combined. The poll keeps its first k."""
    config = service_config("responses")
    container_factory(ResponsesService, config).start()
    poll_id, sessions = _poll_with_answers(engines, [(BUURTEN[0], False, False)] * 40)
    with ClusterRpcProxy(config) as rpc:
        first = rpc.responses.results(GM, poll_id, 10)
        rng = random.Random(9)
        run_in_transaction(
            sessions,
            lambda s: intake.record_batch(
                s,
                [submission(poll_id, rng) for _ in range(30)],
                secret=b"s",
                emit_many=add_events,
                today=lambda: datetime.now(UTC),
            ),
        )
        later = rpc.responses.results(GM, poll_id, 15)
    assert first["k"] == later["k"] == 10


@pytest.mark.service
def test_live_results_serve_the_last_release_while_one_fresh_computation_runs(
    container_factory, service_config, engines
):
    """Issue 16, item 3: while answers arrive, a read after a change does not wait for the new
    document. Readers get the last released version at once and one computation per poll runs
    in the background — not one per reader; later reads get the new version. After the close
    a read waits for the final figures."""
    config = service_config("responses")
    container = container_factory(ResponsesService, config)
    container.start()
    poll_id, sessions = _poll_with_answers(engines, [(BUURTEN[0], False, False)] * 40)
    cache = next(d for d in container.extensions if hasattr(d, "cache")).cache
    rng = random.Random(11)

    def respondents(document: dict) -> int:
        return next(a for a in document["areas"] if a["code"] == GM)["respondents"]

    def record(n: int) -> None:
        batch = [submission(poll_id, rng) for _ in range(n)]
        for message in batch:  # where the first 40 are: no new small cells to hide
            message["resident"].update(buurt_code=BUURTEN[0], wijk_code=f"WK{BUURTEN[0][2:8]}")
        run_in_transaction(
            sessions,
            lambda s: intake.record_batch(
                s, batch, secret=b"s", emit_many=add_events, today=lambda: datetime.now(UTC)
            ),
        )

    with ClusterRpcProxy(config) as rpc:
        first = rpc.responses.results(GM, poll_id, 10)  # the first read computes: nothing older
        assert respondents(first) == 40 and first["version"]["seq"] == 1
        refreshes = cache.refreshes  # the first one's, in the background while it waited
        record(60)
        # Twenty readers at once right after the change: the last release at once (the new
        # one for those that came after the background computation ended).
        replies = [rpc.responses.results.call_async(GM, poll_id, 10) for _ in range(20)]
        documents = [reply.result() for reply in replies]
        assert 40 in {respondents(d) for d in documents} <= {40, 100}
        assert cache.refreshes == refreshes + 1  # one computation, whatever the readers
        assert cache.misses == 1  # no reader waited for one since the first read
        wait_for(
            lambda: respondents(rpc.responses.results(GM, poll_id, 10)) == 100,
            message="the fresh release served",
        )
        assert rpc.responses.results(GM, poll_id, 10)["version"]["seq"] == 2

        record(30)
        run_in_transaction(
            sessions,
            lambda s: s.execute(
                sa.update(Poll)
                .where(Poll.id == uuid.UUID(poll_id))
                .values(closed_at=datetime.now(UTC), results_version=Poll.results_version + 1)
            ),
        )
        final = rpc.responses.results(GM, poll_id, 10)  # closed: waits for the final figures
        assert respondents(final) == 130 and final["version"]["final"] is True


@pytest.mark.service
def test_a_first_release_longer_than_a_reader_waits_is_503_with_retry_after_then_served(
    container_factory, service_config, engines
):
    """A poll's first release (and the final one after the close) can take longer than a
    reader should wait (a sparse poll over many buurten: a minute, docs/benchmarks.md). The
    reader is told to come back (Unavailable: the gateway's 503 with Retry-After) and the
    computation goes on in the background, once; the next reads get it."""
    config = {**service_config("responses"), "RESULTS_WAIT": 0}
    container = container_factory(ResponsesService, config)
    container.start()
    poll_id, _ = _poll_with_answers(engines, [(BUURTEN[0], False, False)] * 40)
    cache = next(d for d in container.extensions if hasattr(d, "cache")).cache
    with ClusterRpcProxy(config) as rpc:
        with pytest.raises(BeingComputed, match="being computed"):
            rpc.responses.results(GM, poll_id, 10)
        document = wait_for(
            lambda: _served(rpc, poll_id),
            timeout=60,
            message="the first release served once computed",
        )
    assert document["version"]["seq"] == 1
    assert cache.refreshes == 1  # the readers that came back did not start another


def _served(rpc, poll_id: str) -> dict | None:
    try:
        return rpc.responses.results(GM, poll_id, 10)
    except Unavailable:
        return None
