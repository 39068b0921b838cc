"""``make run``: check the broker and database, migrate, start every service of the Procfile,
walk through what the system can do so far, then keep serving until Ctrl-C.

    python -m deploy.local [--once]

``--once`` stops after the walkthrough (exit 0 when it succeeded): the e2e test uses it.
Addresses come from the environment as in each service's config.yml (AMQP_URI,
POLLS_DATABASE_URL, …).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "deploy" / "Procfile"

START_HINT = {
    "RabbitMQ": "start it with: rabbitmq-server -detached",
    "PostgreSQL": "start it with: pg_ctlcluster --skip-systemctl-redirect "
    "$(ls /etc/postgresql) main start",
}


def say(message: str) -> None:
    print(f"[buurtpeil] {message}", flush=True)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_dependencies() -> bool:
    from services.common.config import load_service_config

    config = load_service_config("polls")
    amqp = urlparse(config["AMQP_URI"])
    pg = make_url(config["DATABASE_URL"])
    ok = True
    for name, host, port in (
        ("RabbitMQ", amqp.hostname or "127.0.0.1", amqp.port or 5672),
        ("PostgreSQL", pg.host or "127.0.0.1", pg.port or 5432),
    ):
        if not reachable(host, port):
            print(f"{name} is not reachable on {host}:{port}; {START_HINT[name]}", file=sys.stderr)
            ok = False
    return ok


def gateway_url() -> str:
    from services.common.config import load_service_config

    host, port = str(load_service_config("gateway")["WEB_SERVER_ADDRESS"]).rsplit(":", 1)
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"  # noqa: S104


def push_port() -> int:
    """The fake push service's port (development only)."""
    return int(os.environ.get("PUSH_PORT", "8089"))


def procfile() -> list[tuple[str, str]]:
    entries = []
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


def start_processes() -> list[tuple[str, subprocess.Popen[bytes]]]:
    from services.common.config import load_service_config

    bin_dir = Path(sys.executable).parent
    smtp_port = str(urlparse(load_service_config("panel")["SMTP_URL"]).port or 25)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SMTP_PORT": smtp_port,
        "PUSH_PORT": str(push_port()),
        "PYTHONUNBUFFERED": "1",
    }
    started = []
    for name, command in procfile():
        log = open(ROOT / f".run-{name}.log", "wb")  # noqa: SIM115 - kept open for the child
        argv = [string.Template(word).safe_substitute(env) for word in command.split()]
        process = subprocess.Popen(  # noqa: S603 - commands come from our own Procfile
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        say(f"started {name} (pid {process.pid}, log .run-{name}.log)")
        started.append((name, process))
    return started


def stop_processes(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
        say(f"stopped {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local")
    parser.add_argument("--once", action="store_true", help="exit after the walkthrough")
    args = parser.parse_args(argv)

    if not check_dependencies():
        return 2
    from deploy.seed import ADMIN_EMAIL, ADMIN_PASSWORD, seed
    from services.common import migrate

    say("migrating databases")
    migrate.main(["--create"])
    say(f"seeding: {', '.join(seed())}")
    processes = start_processes()
    try:
        from deploy.walkthrough import walkthrough

        summary = walkthrough(gateway_url(), f"http://127.0.0.1:{push_port()}", processes)
        say(summary)
        if args.once:
            return 0
        say(f"serving the API on {gateway_url()} (docs: {gateway_url()}/openapi.json)")
        say(f"staff login: {ADMIN_EMAIL} / {ADMIN_PASSWORD}")
        say(
            f"metrics: {gateway_url()}/metrics, polls :9101, panel :9102; e-mail: "
            ".run-smtp.log — Ctrl-C stops everything"
        )
        while all(p.poll() is None for _, p in processes):
            time.sleep(0.5)
        dead = [name for name, p in processes if p.poll() is not None]
        say(f"process exited: {', '.join(dead)}; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_processes(processes)


if __name__ == "__main__":
    sys.exit(main())
