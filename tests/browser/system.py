"""The whole system for the browser tests, as ``make run`` starts it: every service and the
gateway of deploy/Procfile as OS processes, on free ports, against this run's test databases
and a fresh vhost; the fake push service and the SMTP sink (systems outside ours) in this
process. Seeded over the JSON API: two municipalities with different house styles and areas,
letter codes, staff tokens signed with this run's key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from deploy.local import procfile
from services.common import tokens
from services.notify import webpush
from tests.support.gateway import Api, free_port
from tests.support.panel import utrecht_files

ROOT = Path(__file__).resolve().parents[2]
UTRECHT, AMERSFOORT = "GM0344", "GM0307"
# Two house styles that differ: Utrecht's red with white text, a dark green with white text.
BRANDING = {
    UTRECHT: {"app_name": "Buurtpeil Utrecht", "primary_color": "#CC0000"},
    AMERSFOORT: {"app_name": "Amersfoort Peilt", "primary_color": "#00594F"},
}
NAMES = {UTRECHT: "Utrecht", AMERSFOORT: "Amersfoort"}


def areas_for(code: str) -> dict[str, str]:
    """Utrecht's CBS files, under ``code`` for another municipality (its own codes)."""
    files = utrecht_files()
    if code == UTRECHT:
        return files
    digits = code[2:]
    return {k: v.replace("0344", digits) for k, v in files.items()}


@dataclass
class System:
    base: str
    api: Api
    push: Any
    smtp: Any
    logs: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    codes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (code, wijk)
    staff: dict[str, tuple[str, str]] = field(default_factory=dict)  # e-mail, password

    def admin(self, municipality: str) -> str:
        return self.api.staff_token(municipality, "admin")

    def letter_code(self, municipality: str = UTRECHT, wijk: str = "WK034401") -> str:
        """A letter code of ``wijk`` (a code joins only to a buurt of its own wijk)."""
        found = next(c for c in self.codes[municipality] if c[1].endswith(wijk[-2:]))
        self.codes[municipality].remove(found)
        return found[0]

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.terminate()
        for _, process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def service_env(databases: dict[str, str], amqp_uri: str, keys: Path, smtp_url: str, port: int):
    return {
        "AMQP_URI": amqp_uri,
        **{f"{s.upper()}_DATABASE_URL": url for s, url in databases.items()},
        **{f"{s.upper()}_METRICS_PORT": "0" for s in databases},
        # PostgreSQL is shared with other test runs on this machine: small pools.
        **{f"{s.upper()}_DATABASE_POOL_SIZE": "3" for s in databases},
        "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "APP_URL": f"http://127.0.0.1:{port}",  # the links in e-mails open this system
        "SMTP_URL": smtp_url,
        "JWT_PRIVATE_KEY_FILE": str(keys / "jwt_private.pem"),
        "JWT_PUBLIC_KEY_FILE": str(keys / "jwt_public.pem"),
        "VAPID_PRIVATE_KEY_FILE": str(keys / "vapid_private.pem"),
        "LINK_PRIVATE_KEY_FILE": str(keys / "link_private.pem"),
        "LINK_PUBLIC_KEY_FILE": str(keys / "link_public.pem"),
        "OUTBOX_POLL_INTERVAL": "0.1",
        "DISPATCH_POLL_INTERVAL": "0.2",
        "RATE_JOIN": "100000/min burst 1000",
        "RATE_SIGNUP": "100000/min burst 1000",
        "RATE_VERIFY": "100000/min burst 1000",
        "RATE_LOCATE": "100000/min burst 1000",
        # The staff page crawl visits every page of two municipalities at two widths with one
        # staff token within a minute, each page several routes: far above a person's pace.
        "RATE_TOKEN": "100000/min burst 1000",
        "MAP_TILE_URL": "",  # no background tiles in tests: the buurt polygons alone
        # The gateway's shared state in Redis under a key prefix of this run's own.
        "REDIS_KEY_PREFIX": f"bp_browser_{Path(databases['polls']).name}",
        "PYTHONUNBUFFERED": "1",
    }


def start_system(
    databases: dict[str, str], amqp_uri: str, folder: Path, **overrides: str
) -> System:
    from tests.fakes.push_service import FakePushService
    from tests.fakes.smtp_sink import SmtpSink

    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = tokens.generate_keypair()
    (keys / "jwt_private.pem").write_text(private_pem)
    (keys / "jwt_public.pem").write_text(public_pem)
    (keys / "vapid_private.pem").write_text(webpush.generate_vapid_key())
    link_private, link_public = tokens.generate_keypair()
    (keys / "link_private.pem").write_text(link_private)
    (keys / "link_public.pem").write_text(link_public)
    push = FakePushService().start()
    smtp = SmtpSink().start()
    port = free_port()
    env = {**os.environ, **service_env(databases, amqp_uri, keys, smtp.url, port), **overrides}
    env.pop("BUURTPEIL_NO_EVENTLET", None)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    system = System(
        f"http://127.0.0.1:{port}",
        Api(f"http://127.0.0.1:{port}", tokens.load_private_key(private_pem), requests.Session()),
        push,
        smtp,
        logs,
    )
    try:
        for name, command in procfile():
            if not command.startswith("nameko "):
                continue  # the fakes run in this process
            system.processes.append(
                (
                    name,
                    subprocess.Popen(  # noqa: S603 - our own Procfile
                        [sys.executable, "-m", *command.split()],
                        cwd=ROOT,
                        env=env,
                        stdout=(logs / f"{name}.log").open("wb"),
                        stderr=subprocess.STDOUT,
                    ),
                )
            )
        wait_ready(system)
        seed(system)
        seed_staff(system, databases["panel"])
    except BaseException:
        system.stop()
        push.stop()
        smtp.stop()
        raise
    return system


def wait_ready(system: System, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        dead = [n for n, p in system.processes if p.poll() is not None]
        if dead:
            log = (system.logs / f"{dead[0]}.log").read_text()[-3000:]
            raise RuntimeError(f"{dead[0]} exited:\n{log}")
        try:
            response = requests.get(system.base + "/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy machine
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the gateway did not become ready: {last}")


def seed(system: System) -> None:
    api = system.api
    platform = api.staff_token(None, "platform_admin")
    for code in (UTRECHT, AMERSFOORT):
        made = api.request(
            "POST",
            "/admin/v1/municipalities",
            token=platform,
            # No municipal quiet hours: the tests may run at night (the default is 21:00–08:00).
            json={
                "code": code,
                "name": NAMES[code],
                "branding": BRANDING[code],
                "settings": {"quiet_hours": None},
            },
        )
        assert made.status_code == 201, made.text
        imported = api.request(
            "POST", "/admin/v1/areas/import", token=system.admin(code), json=areas_for(code)
        )
        assert imported.status_code == 200, imported.text
        batch = api.request(
            "POST", "/admin/v1/invitation-batches", token=system.admin(code), json={"total": 1500}
        )
        assert batch.status_code == 201, batch.text
        system.codes[code] = [
            tuple(line.split(",")[:2]) for line in batch.json()["csv"].splitlines()[1:]
        ]


STAFF_PASSWORD = "Groene lantaarns langs de oude gracht"


def seed_staff(system: System, panel_database: str) -> None:
    """An editor with a password per municipality, as an operator seeds one (the staff
    dashboard's sign-in form needs a real account)."""
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from services.panel import accounts

    engine = sa.create_engine(panel_database)
    try:
        for code in (UTRECHT, AMERSFOORT):
            email = f"redactie@{NAMES[code].lower()}.example"
            with Session(engine) as session, session.begin():
                accounts.create_staff(
                    session,
                    municipality_code=code,
                    email=email,
                    role="editor",
                    password=STAFF_PASSWORD,
                    now=datetime.now(UTC),
                    name="Redactie",
                )
            system.staff[code] = (email, STAFF_PASSWORD)
    finally:
        engine.dispose()
