"""`make run` as a new engineer meets it: the local runner, end to end, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.polls.library import library
from tests.support.gateway import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_local(env_overrides: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "deploy.local", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_local_run_starts_the_services_and_walks_through_the_platform(
    databases, amqp_uri, clean_databases, tmp_path
):
    result = run_local(
        {
            "AMQP_URI": amqp_uri,
            "POLLS_DATABASE_URL": databases["polls"],
            "PANEL_DATABASE_URL": databases["panel"],
            "NOTIFY_DATABASE_URL": databases["notify"],
            "NOTIFY_METRICS_PORT": "0",
            "RESPONSES_DATABASE_URL": databases["responses"],
            "RESPONSES_METRICS_PORT": "0",
            "PUSH_PORT": str(free_port()),
            "VAPID_PRIVATE_KEY_FILE": str(tmp_path / "vapid_private.pem"),
            "POLLS_METRICS_PORT": "0",
            "PANEL_METRICS_PORT": "0",
            "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
            "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
            "JWT_PRIVATE_KEY_FILE": str(tmp_path / "jwt_private.pem"),
            "JWT_PUBLIC_KEY_FILE": str(tmp_path / "jwt_public.pem"),
        }
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    count = len(library())
    assert f"[buurtpeil] template library: {count} templates" in lines
    summary = [line for line in lines if line.startswith("[buurtpeil] polls:")]
    assert summary == [
        f"[buurtpeil] polls: templates={count} joined=3 published=1 pushed=2 visible=2 "
        "answered=2 after_close=0"
    ]
    assert lines[-1] == "[buurtpeil] stopped gateway"
    assert (tmp_path / "jwt_private.pem").stat().st_mode & 0o777 == 0o600


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
