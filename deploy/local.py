"""``make run``: check the broker and database, migrate, start every service of the Procfile,
seed Utrecht and a synthetic panel, run the whole loop on screen, then keep serving until
Ctrl-C.

    python -m deploy.local [--once]

``--once`` (``make demo``) stops after the loop and exits 0 when it succeeded. Addresses come
from the environment as in each service's config.yml (AMQP_URI, POLLS_DATABASE_URL, …);
BUURTPEIL_PANEL_SIZE sets the synthetic panel (default 2,000). The gateway runs as one process
per core on one port (GATEWAY_PROCESSES to choose), sharing its state through Redis.

Development mode (``BUURTPEIL_ENV=development`` for every process it starts: development
secrets and keys allowed, notify may push to the fake push service over http): every run
starts from empty tables (the databases are migrated, then emptied), because the fake push
service and the mail catcher start empty too — residents of an earlier run would have
subscriptions nobody answers. The per-address rate limits are raised:
the whole synthetic panel joins from 127.0.0.1.
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
    "Redis": "start it with: redis-server --daemonize yes --bind 127.0.0.1 --save ''",
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
    amqp = urlparse(config["AMQP_URI"].split(";")[0])  # the first of the broker's nodes
    pg = make_url(config["DATABASE_URL"])
    redis = urlparse(str(load_service_config("gateway")["REDIS_URL"]))
    ok = True
    for name, host, port in (
        ("RabbitMQ", amqp.hostname or "127.0.0.1", amqp.port or 5672),
        ("PostgreSQL", pg.host or "127.0.0.1", pg.port or 5432),
        ("Redis", redis.hostname or "127.0.0.1", redis.port or 6379),
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


def mail_port() -> int:
    """The mail catcher's read API (development only)."""
    return int(os.environ.get("MAIL_HTTP_PORT", "8025"))


def panel_size() -> int:
    return int(os.environ.get("BUURTPEIL_PANEL_SIZE", "2000"))


# The synthetic panel joins from one address; production keeps config.yml's limits.
DEVELOPMENT_LIMITS = {
    "RATE_JOIN": "100000/min burst 1000",
    "RATE_SIGNUP": "100000/min burst 1000",
    "RATE_VERIFY": "100000/min burst 1000",
}


def empty_tables() -> list[str]:
    """Empty every table but Alembic's in each service database (development mode)."""
    import sqlalchemy as sa

    from services.common import migrate
    from services.common.config import load_service_config

    for service in migrate.SERVICES_WITH_DATABASE:
        engine = sa.create_engine(load_service_config(service)["DATABASE_URL"])
        try:
            with engine.begin() as conn:
                migrate.empty_tables(conn)
        finally:
            engine.dispose()
    return list(migrate.SERVICES_WITH_DATABASE)


def procfile() -> list[tuple[str, str]]:
    entries = []
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


def gateway_processes() -> int:
    """One gateway process per core, all on one port (each binds it with SO_REUSEPORT)."""
    return int(os.environ.get("GATEWAY_PROCESSES", "0")) or os.cpu_count() or 1


def replicated(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The Procfile's entries, the gateway's repeated as gateway-1 … gateway-N."""
    count = gateway_processes()
    return [
        (f"{name}-{i}" if name == "gateway" and count > 1 else name, command)
        for name, command in entries
        for i in range(1, (count if name == "gateway" else 1) + 1)
    ]


def start_processes() -> list[tuple[str, subprocess.Popen[bytes]]]:
    from services.common.config import load_service_config

    bin_dir = Path(sys.executable).parent
    smtp_port = str(urlparse(load_service_config("panel")["SMTP_URL"]).port or 25)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SMTP_PORT": smtp_port,
        "PUSH_PORT": str(push_port()),
        "MAIL_HTTP_PORT": str(mail_port()),
        "PYTHONUNBUFFERED": "1",
        **{k: os.environ.get(k, v) for k, v in DEVELOPMENT_LIMITS.items()},
        # Development defaults (secrets, .keys/) are allowed, and notify may push to the
        # local fake push service over http (services/common/environment.py).
        "BUURTPEIL_ENV": "development",
        "PUSH_DEVELOPMENT_ORIGINS": f"http://127.0.0.1:{push_port()}",
    }
    started = []
    for name, command in replicated(procfile()):
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


def stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local")
    parser.add_argument("--once", action="store_true", help="exit after the walkthrough")
    args = parser.parse_args(argv)
    # Ctrl-C, and SIGTERM (a process manager, a test), stop every process we started. SIGINT
    # is set explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_on_signal)

    if not check_dependencies():
        return 2
    from deploy.seed import ADMIN_EMAIL, ADMIN_PASSWORD, seed
    from services.common import migrate

    say("migrating databases")
    migrate.main(["--create"])
    say(f"development mode: emptied the tables of {', '.join(empty_tables())}")
    say(f"seeding: {', '.join(seed())}")
    processes = start_processes()
    try:
        from deploy.walkthrough import walkthrough

        outcome = walkthrough(
            gateway_url(),
            f"http://127.0.0.1:{push_port()}",
            f"http://127.0.0.1:{mail_port()}",
            processes,
            panel_size(),
        )
        say(outcome.summary())
        if args.once:
            return 0
        from deploy.walkthrough import VISITOR_WIJK, visitor_letter_code

        say(f"resident app: {gateway_url()}/app/GM0344/")
        say(f"staff dashboard: {gateway_url()}/staff/")
        say(f"letter code to join with: {visitor_letter_code(gateway_url())}")
        say(f"(it joins a buurt of wijk {VISITOR_WIJK} only, as a letter's code would)")
        say(f"serving the API on {gateway_url()} (docs: {gateway_url()}/openapi.json)")
        say(f"staff login: {ADMIN_EMAIL} / {ADMIN_PASSWORD}")
        say(
            f"metrics: {gateway_url()}/metrics, polls :9101, panel :9102, notify :9103, "
            "responses :9104, feedback :9105"
        )
        say(
            f"e-mail: http://127.0.0.1:{mail_port()}/messages (and .run-smtp.log); pushes: "
            f"http://127.0.0.1:{push_port()}/deliveries — Ctrl-C stops everything"
        )
        while all(p.poll() is None for _, p in processes):
            time.sleep(0.5)
        dead = [name for name, p in processes if p.poll() is not None]
        say(f"process exited: {', '.join(dead)}; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:  # a step of the loop did not come out as it should
        print(f"[buurtpeil] the loop failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop_processes(processes)


if __name__ == "__main__":
    sys.exit(main())
