"""`make run` as a new engineer meets it: the local runner, end to end, in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from deploy.local import procfile, replicated, started_at
from services.polls.library import library
from tests.conftest import REDIS_PREFIX, wait_for
from tests.support.gateway import free_port

ROOT = Path(__file__).resolve().parents[2]


def local_env(databases: dict[str, str], amqp_uri: str, tmp_path: Path) -> dict[str, str]:
    """The runner pointed at this test's databases and vhost, on free ports, with its keys in
    ``tmp_path``."""
    return {
        "AMQP_URI": amqp_uri,
        **{f"{s.upper()}_DATABASE_URL": url for s, url in databases.items()},
        **{f"{s.upper()}_METRICS_PORT": "0" for s in databases},
        "PUSH_PORT": str(free_port()),
        "MAIL_HTTP_PORT": str(free_port()),
        "VAPID_PRIVATE_KEY_FILE": str(tmp_path / "vapid_private.pem"),
        "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
        "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
        "JWT_PRIVATE_KEY_FILE": str(tmp_path / "jwt_private.pem"),
        "JWT_PUBLIC_KEY_FILE": str(tmp_path / "jwt_public.pem"),
        # Rate-limit windows of this run alone (the staff login of an earlier run still counts
        # within its minute otherwise).
        "REDIS_KEY_PREFIX": f"{REDIS_PREFIX}_{uuid.uuid4().hex[:8]}",
    }


def run_local(env_overrides: dict[str, str], timeout: float = 480) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "deploy.local", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.timeout(600)  # two waves and a panel of 1,000 joining over HTTP, on 2 cores
def test_local_run_runs_the_whole_loop_and_sums_it_up_in_one_line(
    databases, amqp_uri, clean_databases, tmp_path
):
    """``make demo``: a synthetic panel joins over HTTP; the poll reaches exactly the residents
    of the three wijken (decrypted pushes naming the poll, e-mails); the answers are counted per
    area with small areas hidden; feedback reaches exactly the respondents. The runner checks
    each of these itself and exits non-zero when one does not hold. Issue 13: a region of
    Utrecht's own is defined and shown in the results, and a second wave of the poll (a series)
    in which the least safe wijk feels much safer shows that wijk's change as significant. Issue
    14: five answers on paper, keyed in by the role invoerder, counted once."""
    result = run_local({**local_env(databases, amqp_uri, tmp_path), "BUURTPEIL_PANEL_SIZE": "1000"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert f"[buurtpeil] template library: {len(library())} templates" in lines
    summary = [line for line in lines if line.startswith("[buurtpeil] loop:")]
    assert len(summary) == 1, lines[-30:]
    figures = dict(pair.split("=") for pair in summary[0].split("loop: ")[1].split())
    n = {key: int(value) for key, value in figures.items() if value.isdigit()}
    assert list(n) == [
        "invited",
        "delivered",
        "responded",
        "results_wijken",
        "feedback_notified",
        "regions",
        "waves",
        "significant_changes",
        "paper",
    ]
    # 1,000 residents by population: about a quarter live in West, Overvecht and Zuid (about
    # 55 per wijk: enough for a wijk's real change to show as significant at k = 10).
    assert 180 < n["invited"] < 320
    assert n["delivered"] == n["invited"]
    assert 0.4 * n["invited"] < n["responded"] < 0.8 * n["invited"]
    assert n["feedback_notified"] == n["responded"]
    assert 0 <= n["results_wijken"] <= 3
    assert any("buurten:" in line and "hidden" in line for line in lines)
    shown = "\n".join(lines[-60:])
    assert n["regions"] >= 1 and n["waves"] == 2, shown
    assert n["significant_changes"] >= 1, shown
    # Issue 14: who answered and how, as the results show them; the split printed after them.
    assert {"resident", "ondernemer"} <= set(figures["kinds"].split(",")), summary
    assert "app" in figures["channels"].split(","), summary
    assert any("split by kind and channel" in line for line in lines)
    # Issue 14: five residents answered on paper, keyed in by a data-entry clerk; a form keyed
    # in twice was refused (the runner checks both, and the results count the five).
    assert n["paper"] == 5, shown
    assert "paper" in figures["channels"].split(","), summary
    assert "link" in figures["channels"].split(","), summary  # the e-mail residents' links
    assert any("paper: 5 forms keyed in" in line and "refused" in line for line in lines)
    # The wijk whose answers changed in wave 2: its change is significant.
    trend = next(line for line in lines if line.startswith("[buurtpeil] trend over waves 1, 2"))
    changed = re.search(r"\((WK\d{6})\)", trend).group(1)
    found = next(line for line in lines if "areas with a significant change: " in line)
    assert changed in re.findall(r"WK\d{6}", found.split(": ", 1)[1]), found
    assert lines[-1].startswith("[buurtpeil] stopped gateway")  # one process per core
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


def test_local_run_says_in_one_line_that_redis_is_missing(databases):
    result = run_local(
        {"REDIS_URL": "redis://127.0.0.1:1/0", "POLLS_DATABASE_URL": databases["polls"]},
        timeout=30,
    )
    assert result.returncode != 0
    complaint = [line for line in result.stderr.splitlines() if "Redis" in line]
    assert complaint == [
        "Redis is not reachable on 127.0.0.1:1; start it with: "
        "redis-server --daemonize yes --bind 127.0.0.1 --save ''"
    ]


def test_ctrl_c_stops_every_process(databases, amqp_uri, clean_databases, tmp_path):
    """``make run`` keeps serving after the loop; Ctrl-C (SIGINT) stops it and every process
    it started, and it exits 0."""
    env = {
        **os.environ,
        **local_env(databases, amqp_uri, tmp_path),
        "BUURTPEIL_PANEL_SIZE": "60",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.local"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip())
            if "Ctrl-C stops everything" in line:
                break
        assert any(line.startswith("[buurtpeil] loop:") for line in lines), lines[-20:]
        children = [
            int(match.group(1))
            for line in lines
            if (match := re.search(r"started [\w-]+ \(pid (\d+)", line))
        ]
        assert len(children) == len(replicated(procfile()))  # the gateway once per core
        # The resident app before joining, and a letter code that joins it.
        app = next(line for line in lines if line.startswith("[buurtpeil] resident app: "))
        url = app.split("resident app: ", 1)[1]
        assert url.endswith("/app/GM0344/")
        start = requests.get(url, timeout=30)
        assert start.status_code == 200 and "Lettercode" in start.text
        dashboard = next(line for line in lines if line.startswith("[buurtpeil] staff dashboard: "))
        sign_in = requests.get(dashboard.split("staff dashboard: ", 1)[1], timeout=30)
        assert sign_in.status_code == 200 and 'type="password"' in sign_in.text
        code = next(line for line in lines if "letter code to join with: " in line).split(": ")[1]
        joined = requests.post(
            url.split("/app/")[0] + "/api/v1/join",
            json={"invitation_code": code, "buurt_code": "BU03440111", "consent": True},
            timeout=30,
        )
        assert joined.status_code == 201, joined.text
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert rest.splitlines()[-1].startswith("[buurtpeil] stopped gateway")


def test_a_launcher_killed_with_sigkill_takes_its_processes_along_and_the_next_demo_runs(
    databases, amqp_uri, clean_databases, tmp_path
):
    """Defect 15.17: each child started in its own session, so a launcher killed with SIGKILL
    left the services, the fake push service and the mail sink running on their ports, and
    the next ``make demo`` failed obscurely. Now the children die with the launcher, and the
    next run starts cleanly."""
    env = {
        **local_env(databases, amqp_uri, tmp_path),
        "BUURTPEIL_PANEL_SIZE": "60",
        "BUURTPEIL_RUN_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.local"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: list[int] = []
    try:
        for line in process.stdout:
            if match := re.search(r"started [\w-]+ \(pid (\d+)", line):
                children.append(int(match.group(1)))
            if len(children) == len(replicated(procfile())):
                break
        assert len(children) == len(replicated(procfile())), children
        assert (tmp_path / ".run-pids").exists()
    finally:
        process.kill()  # SIGKILL: the launcher cannot stop anything itself
        process.wait()
    wait_for(
        lambda: all(started_at(pid) is None for pid in children),
        timeout=60,
        message="every child of the killed launcher gone",
    )
    result = run_local(env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert any(line.startswith("[buurtpeil] loop:") for line in result.stdout.splitlines())
    assert "is taken by" not in result.stderr
