"""What the fault suite (``make faults``) shares: the services as ``nameko run`` processes against
a broker and databases of the test's choosing, residents answering under load and retrying as
documented (``intake_load``), the accounting of one poll (accepted, stored, counted, lost,
duplicated) and the one line per fault:

    fault: name=… accepted=… stored=… counted=… lost=… duplicated=… unavailable_s=… rate_per_s=…

``report`` prints the line and keeps it for the end of the pytest run (tests/conftest.py shows
every fault line in the terminal summary, also when output is captured).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.support import infra
from tests.support.gateway import free_port
from tests.support.responses import GM, recount, stop_process, stored_counters

ROOT = Path(__file__).resolve().parents[2]
FAULT_LINES: list[str] = []


def report(
    name: str,
    accounting: dict[str, int],
    unavailable_s: float,
    rate: float,
    peak: float | None = None,
) -> str:
    """Print the fault's line (and keep it for the end of the run). ``peak``: what the same
    stack accepted per second just before, with the residents sending as fast as it answers
    (``measure_peak``); the load under the fault is aimed at half of it."""
    line = (
        f"fault: name={name} accepted={accounting['accepted']} stored={accounting['stored']} "
        f"counted={accounting['counted']} lost={accounting['lost']} "
        f"duplicated={accounting['duplicated']} unavailable_s={unavailable_s:.1f} "
        f"rate_per_s={rate:.0f}"
    )
    if peak is not None:
        line += f" peak_per_s={peak:.0f}"
    FAULT_LINES.append(line)
    print(line)
    return line


def report_load(
    name: str,
    accounting: dict[str, int],
    load: LoadResult,
    fault_at: float,
    peak: float | None = None,
) -> str:
    return report(name, accounting, load.unavailable_s(fault_at), load.rate_before(fault_at), peak)


@dataclass
class Stack:
    """Buurtpeil's processes (deploy/Procfile lines) pointed at ``amqp_uri`` and ``databases``."""

    amqp_uri: str
    databases: dict[str, str]
    jwt_keys: dict[str, Any]
    logs: Path
    redis_prefix: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    gateway_port: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        return {
            "AMQP_URI": self.amqp_uri,
            "LOG_LEVEL": "WARNING",
            **{f"{s.upper()}_DATABASE_URL": url for s, url in self.databases.items()},
            **{f"{s.upper()}_METRICS_PORT": "0" for s in self.databases},
            "JWT_PRIVATE_KEY_FILE": self.jwt_keys["private"],
            "JWT_PUBLIC_KEY_FILE": self.jwt_keys["public"],
            "VAPID_PRIVATE_KEY_FILE": self.jwt_keys["vapid"],
            "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",  # nobody sends mail here
            "GATEWAY_ADDRESS": f"127.0.0.1:{self.gateway_port}",
            "GATEWAY_METRICS_PORT": "0",
            "REDIS_KEY_PREFIX": self.redis_prefix,
            "RPC_TIMEOUT": "10",
            "OUTBOX_POLL_INTERVAL": "0.2",
        }

    def start(self, *services: str, **env: str) -> Stack:
        for service in services:
            self.processes[service] = infra.nameko_run(
                service, {**self.env(), **env}, self.logs / f"{service}.log", mode="ab"
            )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for name in self.processes:
            path = self.logs / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            out.append(f"--- {name} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)


@dataclass
class LoadResult:
    submissions: list[dict[str, Any]]
    failures: list[tuple[float, str]]
    started: float
    ended: float

    @property
    def accepted(self) -> list[str]:
        return [s["receipt"] for s in self.submissions if "receipt" in s]

    def rate_between(self, start: float, end: float) -> float:
        """Submissions accepted per second in [start, end)."""
        done = [s for s in self.submissions if start <= s.get("accepted", end) < end]
        return len(done) / max(1e-9, end - start)

    def rate_before(self, moment: float) -> float:
        """Submissions accepted per second before ``moment`` (the fault): the load the system
        carried. (Over the whole run it is lower: each client waits for its own submission
        to be accepted, so during an outage nobody starts new ones.)"""
        done = [s for s in self.submissions if s.get("accepted", moment) < moment]
        return len(done) / max(1e-9, moment - self.started)

    def problems(self) -> dict[str, int]:
        """Submissions that ended without a 202 (refused for good, or given up)."""
        return dict(
            Counter(
                "gave_up" if s.get("gave_up") else "rejected"
                for s in self.submissions
                if "receipt" not in s
            )
        )

    def unavailable_s(self, since: float, until: float | None = None) -> float:
        """Seconds from the first failed attempt after ``since`` to the last one before
        ``until``, plus the retry pause (0 when nothing failed): the window in which
        residents got a 5xx, a timeout or no connection."""
        times = [t for t, _ in self.failures if t >= since and (until is None or t <= until)]
        if not times:
            return 0.0
        from tests.support.intake_load import RETRY_PAUSE

        return max(times) - min(times) + RETRY_PAUSE

    def failure_kinds(self, since: float = 0.0) -> Counter[str]:
        return Counter(kind for t, kind in self.failures if t >= since)


class LoadProcess:
    """``tests.support.intake_load`` in a process of its own."""

    def __init__(self, work: Path, url: str, poll: dict[str, Any], key_file: str, rate: float):
        from tests.support.answers import minimal_answers

        self.stop_file = work / f"stop-{poll['id']}"
        self.out = work / f"load-{poll['id']}.json"
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "tests.support.intake_load",
                "--url",
                url,
                "--poll",
                poll["id"],
                "--key",
                key_file,
                "--answers",
                json.dumps(minimal_answers(poll["definition"])),
                "--rate",
                str(rate),
                "--stop",
                str(self.stop_file),
                "--out",
                str(self.out),
            ],
            cwd=ROOT,
            stdout=(work / "load.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """For the teardown of a test that failed before ``finish``."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def finish(self, timeout: float = 240) -> LoadResult:
        self.stop_file.touch()
        self.process.wait(timeout)
        data = json.loads(self.out.read_text())
        return LoadResult(
            data["submissions"],
            [tuple(f) for f in data["failures"]],
            data["started"],
            data["ended"],
        )


def recorded(engine: sa.Engine, poll_id: str) -> int:
    """Receipts of this poll with an outcome (recorded, or rejected as a repeat)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM receipts WHERE poll_id = :p"), {"p": poll_id}
        ).scalar_one()


def account(engine: sa.Engine, poll: dict[str, Any], load: LoadResult) -> dict[str, int]:
    retried = sum(1 for s in load.submissions if "receipt" in s and s["attempts"] > 1)
    return account_receipts(engine, poll, load.accepted, retried=retried)


def account_receipts(
    engine: sa.Engine, poll: dict[str, Any], accepted: list[str], *, retried: int = 0
) -> dict[str, int]:
    """accepted (202s), stored (responses of the poll), counted (respondents in the gemeente's
    counter), lost (accepted but not stored), duplicated (stored or counted more than
    accepted). A submission whose first attempt reached the queue although its answer was a
    5xx is recorded under that attempt's receipt; the retry's receipt then says
    ``already_answered`` — one answer stored, none lost; only ``retried`` submissions may.
    Also checks that the counters are exactly what the stored responses add up to."""
    ids = [r.partition(".")[0] for r in accepted]
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT count(*) FROM responses WHERE poll_id = :p"), {"p": poll["id"]}
        ).scalar_one()
        counted = conn.execute(
            sa.text(
                "SELECT coalesce(sum(n), 0) FROM respondents WHERE poll_id = :p "
                "AND question_id = '*' AND area_code = :gm"
            ),
            {"p": poll["id"], "gm": GM},
        ).scalar_one()
        outcomes = dict(
            conn.execute(
                sa.text(
                    "SELECT id::text, coalesce(reason, status) FROM receipts "
                    "WHERE id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": ids},
            ).all()
        )
    kinds = Counter(outcomes.get(i, "missing") for i in ids)
    assert set(kinds) <= {"recorded", "already_answered", "missing"}, kinds
    assert kinds.get("already_answered", 0) <= retried, (kinds, retried)
    counts, respondents = stored_counters(engine, poll)
    assert (counts, respondents) == recount(engine, poll), "counters differ from the responses"
    stored, counted = int(stored), int(counted or 0)
    return {
        "accepted": len(accepted),
        "stored": stored,
        "counted": counted,
        "lost": max(0, len(accepted) - stored) + kinds.get("missing", 0),
        "duplicated": max(0, stored - len(accepted)) + max(0, counted - stored),
    }


def wait_drained(engine: sa.Engine, poll_id: str, expected: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while recorded(engine, poll_id) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
