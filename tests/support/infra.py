"""Throwaway infrastructure for one test run: a PostgreSQL database per service and RabbitMQ
vhosts, created fresh and removed afterwards so runs never see each other's data.

Vhosts are made through the RabbitMQ management API when it answers, else with rabbitmqctl
(which is what this machine has without the management plugin).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
PG_BASE = os.environ.get("TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "127.0.0.1:5672")
AMQP_USER = os.environ.get("TEST_AMQP_USER", "guest")
AMQP_PASSWORD = os.environ.get("TEST_AMQP_PASSWORD", "guest")
MGMT_URL = os.environ.get("TEST_RABBIT_MGMT_URL", "http://127.0.0.1:15672")


def port_open(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def nameko_run(
    service: str, env: Mapping[str, str], log: Path, *, mode: str = "wb"
) -> subprocess.Popen[bytes]:
    """One of our services as ``make run`` and production start it (its line in deploy/Procfile),
    in an OS process of its own — for kill -9 tests and benchmarks. ``env`` is added to this
    process's environment (in development mode unless it says otherwise: they run on
    development secrets); output goes to ``log``."""
    from deploy.local import procfile

    command = dict(procfile())[service].split()
    if command[0] != "nameko":
        raise ValueError(f"{service} is not a nameko service in deploy/Procfile")
    return subprocess.Popen(  # noqa: S603 - our own Procfile
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env={"BUURTPEIL_ENV": "development", **os.environ, **env},
        stdout=log.open(mode),
        stderr=subprocess.STDOUT,
    )


def tables_holding(engine: Any, needle: str, *, skip: tuple[str, ...] = ()) -> list[str]:
    """The tables of a service database (but ``skip``) with a row whose text holds ``needle``,
    case-insensitively — for erasure and pseudonymity checks."""
    from services.common.migrate import service_tables

    with engine.connect() as conn:
        return [
            table
            for table in service_tables(conn)
            if table not in skip
            and conn.execute(
                sa.text(f'SELECT count(*) FROM "{table}" t WHERE t::text ILIKE :n'),
                {"n": f"%{needle}%"},
            ).scalar()
        ]


def queue_names(amqp_uri: str) -> list[str]:
    """Every queue of the vhost ``amqp_uri`` names (management API, else rabbitmqctl)."""
    from urllib.parse import unquote, urlsplit

    vhost = unquote(urlsplit(amqp_uri).path[1:]) or "/"
    if _mgmt_available():
        found = requests.get(
            f"{MGMT_URL}/api/queues/{quote(vhost, safe='')}",
            auth=(AMQP_USER, AMQP_PASSWORD),
            timeout=10,
        )
        found.raise_for_status()
        return [q["name"] for q in found.json()]
    exe = shutil.which("rabbitmqctl") or "rabbitmqctl"
    listed = subprocess.run(
        [exe, "-q", "list_queues", "-p", vhost, "name"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


def dead_letter_queues_holding(amqp_uri: str, needle: str) -> list[str]:
    """The dead-letter queues (``*.dlq``) of the vhost with a message whose body holds
    ``needle`` — read without taking anything (every message is put back)."""
    from kombu import Connection

    holding = []
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for name in queue_names(amqp_uri):
            if not name.endswith(".dlq"):
                continue
            held = []
            while (message := channel.basic_get(name, no_ack=False)) is not None:
                held.append(message)
            if any(needle.lower() in _text(m.body).lower() for m in held):
                holding.append(name)
            for message in held:
                channel.basic_reject(message.delivery_tag, requeue=True)
    return holding


def _text(body: Any) -> str:
    return body.decode(errors="replace") if isinstance(body, bytes | bytearray) else str(body)


def _mgmt_available() -> bool:
    return port_open(MGMT_URL.split("//", 1)[1])


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise RuntimeError(
            "cannot create a RabbitMQ vhost: no management API on "
            f"{MGMT_URL} and no rabbitmqctl (enable rabbitmq_management)"
        )
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(name: str) -> str:
    if _mgmt_available():
        auth = (AMQP_USER, AMQP_PASSWORD)
        requests.put(
            f"{MGMT_URL}/api/vhosts/{quote(name, safe='')}", auth=auth, timeout=10
        ).raise_for_status()
        requests.put(
            f"{MGMT_URL}/api/permissions/{quote(name, safe='')}/{AMQP_USER}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            auth=auth,
            timeout=10,
        ).raise_for_status()
    else:
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, AMQP_USER, ".*", ".*", ".*")
    return f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@{AMQP_HOST}/{quote(name, safe='')}"


def delete_vhost(name: str) -> None:
    if _mgmt_available():
        requests.delete(
            f"{MGMT_URL}/api/vhosts/{quote(name, safe='')}",
            auth=(AMQP_USER, AMQP_PASSWORD),
            timeout=10,
        )
    else:
        subprocess.run(
            [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", "delete_vhost", name],
            capture_output=True,
            timeout=60,
        )
