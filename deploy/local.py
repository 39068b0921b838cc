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

A run's processes die with it: each child asks the kernel for SIGTERM when the launcher dies
(``PR_SET_PDEATHSIG``), also when the launcher is killed with SIGKILL; their pids are recorded
(``.run-pids``, or ``$BUURTPEIL_RUN_DIR/.run-pids``) so that the next run stops whatever an
earlier one left; and a port that is still taken stops the start at once with one line naming
the process that holds it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
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


def run_file() -> Path:
    """Where a run records its children (one per checkout unless BUURTPEIL_RUN_DIR says)."""
    return Path(os.environ.get("BUURTPEIL_RUN_DIR") or ROOT) / ".run-pids"


def started_at(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22): with
    the pid it names one process, so a reused pid is never taken for a leftover. None when the
    process is gone (or only a zombie is left of it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name may contain spaces and parentheses
    return None if fields[0] in ("Z", "X") else fields[19]


def record_children(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    entries = [{"name": name, "pid": p.pid, "started": started_at(p.pid)} for name, p in processes]
    run_file().write_text(json.dumps(entries))


def stop_leftovers(grace: float = 15) -> list[str]:
    """Stop the processes an earlier run recorded that still run (a launcher killed before
    it could stop them): SIGTERM to each one's process group, SIGKILL after ``grace`` seconds.
    Returns 'name (pid)' of each one stopped."""
    path = run_file()
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    alive = [e for e in entries if e.get("started") and started_at(e["pid"]) == e["started"]]
    for entry in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(entry["pid"], signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(started_at(e["pid"]) == e["started"] for e in alive):
        time.sleep(0.2)
    for entry in alive:
        if started_at(entry["pid"]) == entry["started"]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(entry["pid"], signal.SIGKILL)
    path.unlink(missing_ok=True)
    return [f"{e['name']} ({e['pid']})" for e in alive]


def ports_needed() -> dict[int, str]:
    """The TCP ports the children of a run listen on (0: a port the kernel chooses)."""
    from services.common.config import load_service_config

    ports = {
        int(gateway_url().rsplit(":", 1)[1]): "gateway",
        push_port(): "push (fake push service)",
        mail_port(): "smtp (mail catcher's read API)",
        int(urlparse(load_service_config("panel")["SMTP_URL"]).port or 25): "smtp",
    }
    for service in ("polls", "panel", "notify", "responses", "feedback"):
        ports[int(load_service_config(service).get("METRICS_PORT") or 0)] = f"{service} metrics"
    ports.pop(0, None)
    return ports


def port_taken(port: int) -> bool:
    """Whether a process listens on ``port`` (SO_REUSEADDR: connections still in TIME_WAIT
    do not count; the gateway's own SO_REUSEPORT would let a leftover share the port
    unnoticed, so this is checked before anything starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once
        except OSError:
            return True
    return False


def port_holder(port: int) -> str | None:
    """'pid N (command line)' of the process listening on ``port``, from /proc (Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                return f"pid {proc.name} ({command})"
        except OSError:
            continue
    return None


def taken_ports() -> list[str]:
    """One line per port a child needs that another process holds, saying how to stop it."""
    lines = []
    for port, name in sorted(ports_needed().items()):
        if port_taken(port):
            holder = port_holder(port)
            if holder:
                how = f"stop it with: kill {holder.split()[1]}"
            else:
                how = f"find it with: ss -ltnp 'sport = :{port}'"
            lines.append(f"port {port} ({name}) is taken by {holder or 'another process'}; {how}")
    return lines


def _die_with(launcher: int) -> None:
    """In the child before it runs its command: SIGTERM when the launcher dies, however it
    dies (PR_SET_PDEATHSIG, Linux); and if it died already, exit now."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != launcher:
        os._exit(1)


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
    launcher = os.getpid()
    for name, command in replicated(procfile()):
        log = open(ROOT / f".run-{name}.log", "wb")  # noqa: SIM115 - kept open for the child
        argv = [string.Template(word).safe_substitute(env) for word in command.split()]
        process = subprocess.Popen(  # noqa: S603 - commands come from our own Procfile
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops them in order
            preexec_fn=lambda: _die_with(launcher),  # noqa: PLW1509 - no threads here yet
        )
        say(f"started {name} (pid {process.pid}, log .run-{name}.log)")
        started.append((name, process))
        record_children(started)
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
    stopped = stop_leftovers()
    if stopped:
        say(f"stopped what an earlier run had left running: {', '.join(stopped)}")
    taken = taken_ports()
    for line in taken:
        print(f"[buurtpeil] {line}", file=sys.stderr, flush=True)
    if taken:
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
        run_file().unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
