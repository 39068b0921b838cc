"""`make run` as a new engineer meets it: the local runner, end to end, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.polls.library import library

ROOT = Path(__file__).resolve().parents[2]


def run_local(env_overrides: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "deploy.local", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_local_run_starts_the_services_and_walks_through_a_poll(
    databases, amqp_uri, clean_databases
):
    result = run_local(
        {"AMQP_URI": amqp_uri, "POLLS_DATABASE_URL": databases["polls"], "POLLS_METRICS_PORT": "0"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    count = len(library())
    assert f"[buurtpeil] template library: {count} templates" in lines
    assert lines[-2] == f"[buurtpeil] polls: templates={count} events=poll_published,poll_closed"
    assert lines[-1] == "[buurtpeil] stopped polls"


def test_local_run_says_in_one_line_what_is_missing(databases):
    result = run_local(
        {"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/", "POLLS_DATABASE_URL": databases["polls"]},
        timeout=30,
    )
    assert result.returncode != 0
    complaint = [line for line in result.stderr.splitlines() if "RabbitMQ" in line]
    assert complaint == [
        "RabbitMQ is not reachable on 127.0.0.1:1; start it with: rabbitmq-server -detached"
    ]
