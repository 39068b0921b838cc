"""Helpers for the responses reliability tests: the service in its own OS process, residents
submitting over HTTP from several clients, and the checks that stored = accepted = counted."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from kombu import Connection
from kombu.exceptions import ChannelError

from services.common import tokens
from services.responses.intake import UNKNOWN, answer_options
from tests.support import infra
from tests.support.answers import minimal_answers
from tests.support.gateway import issue_resident_token

GM = "GM0344"
BUURTEN = ("BU03440111", "BU03440112", "BU03440211", "BU03440312")
AGE_BANDS = ("15_24", "25_44", "45_64", "65_plus", None)
SEXES = ("man", "vrouw", None)


def start_responses(env: dict[str, str], log: Path) -> subprocess.Popen:
    """``nameko run`` of the responses service, as in production, in a process of its own."""
    return infra.nameko_run("responses", {"LOG_LEVEL": "WARNING", **env}, log, mode="ab")


class ResponsesProcesses:
    """responses processes started one after another (``nameko run``, as in production), each
    ready to consume when ``start`` returns. ``stop_all`` ends those still running."""

    def __init__(self, amqp_uri: str, env: dict[str, str], log: Path):
        self.amqp_uri = amqp_uri
        self.env = env
        self.log = log
        self.started: list[subprocess.Popen] = []

    def start(self, **env: str) -> subprocess.Popen:
        from tests.support.notify import wait_for_consumer

        process = start_responses({**self.env, **env}, self.log)
        self.started.append(process)
        wait_for_consumer(self.amqp_uri, "responses.intake")
        wait_for_consumer(self.amqp_uri, "evt-polls-poll_published--responses.on_poll_published")
        return process

    def stop_all(self) -> None:
        for process in self.started:
            stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def queue_state(amqp_uri: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of ``queue``; (0, 0) when it was never declared."""
    with Connection(amqp_uri) as conn:
        try:
            _, ready, consumers = conn.channel().queue_declare(queue, passive=True)
        except ChannelError:
            return 0, 0
        return ready, consumers


def queue_depth(amqp_uri: str, queue: str) -> int:
    return queue_state(amqp_uri, queue)[0]


@dataclass
class Submitters:
    """``clients`` threads, each submitting as a new resident each time (its own token and
    Idempotency-Key), until ``stop()``; every answer is kept, so a test can account for each."""

    base_url: str
    private_key: Any
    poll: dict[str, Any]
    clients: int = 4
    pause: float = 0.02  # per client between requests: a few hundred submissions per test
    limit: int = 3000
    accepted: list[str] = field(default_factory=list)  # receipt tokens of every 202
    statuses: Counter[Any] = field(default_factory=Counter)  # status (or exception) → count
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Submitters:
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def failures(self) -> dict[Any, int]:
        return {k: n for k, n in self.statuses.items() if k != 202}

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        url = f"{self.base_url}/api/v1/polls/{self.poll['id']}/responses"
        kid = tokens.key_id(self.private_key.public_key())
        base_answers = minimal_answers(self.poll["definition"])
        while not self._stop.is_set() and self.sent < self.limit:
            buurt = rng.choice(BUURTEN)
            token = issue_resident_token(
                self.private_key,
                municipality=GM,
                buurt=buurt,
                age_band=rng.choice(AGE_BANDS),
                sex=rng.choice(SEXES),
                self_selected=rng.random() < 0.1,
                key_id=kid,
            )
            answers = {**base_answers, "veilig_buurt": rng.randint(1, 5)}
            try:
                response = session.post(
                    url,
                    json={"answers": answers},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                    timeout=30,
                )
                outcome: Any = response.status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with self._lock:
                self.statuses[outcome] += 1
                if outcome == 202:
                    self.accepted.append(response.json()["receipt_id"])
            time.sleep(self.pause)
        session.close()


def recorded_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM receipts WHERE status = 'recorded'")
        ).scalar_one()


def receipt_statuses(engine: sa.Engine, receipt_tokens: list[str]) -> Counter[str]:
    """status of each accepted receipt in responses' table ("missing" when not there)."""
    ids = [uuid.UUID(t.partition(".")[0]) for t in receipt_tokens]
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.select(sa.column("id"), sa.column("status"))
                .select_from(sa.table("receipts"))
                .where(sa.column("id").in_(ids))
            ).all()
        )
    return Counter(found.get(i, "missing") for i in ids)


def recount(engine: sa.Engine, poll: dict[str, Any]) -> tuple[Counter, Counter]:
    """The counters as they must be, recomputed from the stored responses themselves."""
    questions = {q["id"]: q for q in poll["definition"]["questions"]}
    counts: Counter[tuple] = Counter()
    respondents: Counter[tuple] = Counter()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT wijk_code, buurt_code, age_band, sex, self_selected, answers "
                "FROM responses WHERE poll_id = :p"
            ),
            {"p": poll["id"]},
        ).all()
    for wijk, buurt, age_band, sex, self_selected, answers in rows:
        stratum = (age_band or UNKNOWN, sex or UNKNOWN, self_selected)
        for area in (GM, wijk, buurt):
            respondents[("*", area, *stratum)] += 1
            for qid, value in answers.items():
                if qid in questions:
                    respondents[(qid, area, *stratum)] += 1
                    for option in answer_options(questions[qid], value):
                        counts[(qid, option, area, *stratum)] += 1
    return counts, respondents


def stored_counters(engine: sa.Engine, poll: dict[str, Any]) -> tuple[Counter, Counter]:
    with engine.connect() as conn:
        counts = Counter(
            {
                tuple(row[:-1]): row[-1]
                for row in conn.execute(
                    sa.text(
                        "SELECT question_id, option, area_code, age_band, sex, self_selected, n "
                        "FROM counts WHERE poll_id = :p"
                    ),
                    {"p": poll["id"]},
                ).all()
            }
        )
        respondents = Counter(
            {
                tuple(row[:-1]): row[-1]
                for row in conn.execute(
                    sa.text(
                        "SELECT question_id, area_code, age_band, sex, self_selected, n "
                        "FROM respondents WHERE poll_id = :p"
                    ),
                    {"p": poll["id"]},
                ).all()
            }
        )
    return counts, respondents


def assert_stored_once_and_counted(
    engine: sa.Engine, poll: dict[str, Any], accepted: list[str]
) -> int:
    """Every accepted submission stored exactly once, its receipt "recorded", and the counters
    exactly what the stored responses add up to (no double counting). Returns how many."""
    statuses = receipt_statuses(engine, accepted)
    assert statuses == Counter({"recorded": len(accepted)}), statuses
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM responses")).scalar_one()
        receipts = conn.execute(sa.text("SELECT count(*) FROM receipts")).scalar_one()
    assert stored == len(accepted) == receipts, (stored, len(accepted), receipts)

    counts, respondents = stored_counters(engine, poll)
    assert sum(n for (q, area, *_), n in respondents.items() if q == "*" and area == GM) == stored
    likert = sum(n for (q, _, area, *_), n in counts.items() if q == "veilig_buurt" and area == GM)
    assert likert == stored  # a required single-answer question: one count per respondent
    expected_counts, expected_respondents = recount(engine, poll)
    assert counts == expected_counts
    assert respondents == expected_respondents
    return stored


def assert_events_for_each(events: list[Any], engine: sa.Engine) -> int:
    """response_recorded for every stored response (at least once); returns the duplicates.

    The event names no response (issue 15): it is matched to the response by the respondent
    key, HMAC(secret, poll ‖ resident), as responses computes it."""
    from services.common.config import load_service_config
    from services.responses.intake import respondent_key

    secret = str(load_service_config("responses")["RESPONDENT_KEY_SECRET"]).encode()
    with engine.connect() as conn:
        keys = set(conn.execute(sa.text("SELECT respondent_key FROM responses")).scalars())
    seen = [respondent_key(secret, e.payload["poll_id"], e.payload["resident_id"]) for e in events]
    assert set(seen) == keys, (len(set(seen) - keys), len(keys - set(seen)))
    return len(seen) - len(set(seen))


def open_poll(api: Any, service_config: Callable[..., dict[str, Any]], engine: Any) -> dict:
    """Publish a poll for all of Utrecht; return once responses and the gateway both know it."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from tests.conftest import wait_for
    from tests.support.gateway import resident_token

    with ClusterRpcProxy(service_config("polls")) as rpc:
        poll = rpc.polls.create_poll(GM, {"template_id": "veiligheidsgevoel"})
        rpc.polls.publish_poll(GM, poll["id"])

    def known_to_responses() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.text("SELECT count(*) FROM polls WHERE id = :p"), {"p": poll["id"]}
                ).scalar()
            )

    wait_for(known_to_responses, timeout=30, message="responses to know the poll")
    token = resident_token(api, municipality=GM, buurt="BU03440111")
    wait_for(
        lambda: api.request("GET", f"/api/v1/polls/{poll['id']}", token=token).status_code == 200,
        timeout=30,
        message="the poll in the gateway's cache",
    )
    return poll


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
