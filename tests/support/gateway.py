"""The whole HTTP face for tests: polls, panel and the gateway in real containers."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from services.common import tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Api:
    base: str
    private_key: Any
    session: requests.Session

    def url(self, path: str) -> str:
        return self.base + path

    def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def staff_token(
        self,
        municipality: str | None,
        role: str,
        *,
        subject: str | None = None,
        ttl: int = 600,
        **overrides: Any,
    ) -> str:
        """A staff token as panel would issue it (the token format is the contract)."""
        return tokens.issue_token(
            self.private_key,
            typ=overrides.pop("typ", tokens.STAFF_ACCESS),
            subject=subject or str(uuid.uuid4()),
            issuer=overrides.pop("issuer", "buurtpeil"),
            audience=overrides.pop("audience", "buurtpeil-admin"),
            ttl_seconds=ttl,
            claims={
                "sid": str(uuid.uuid4()),
                "mun": municipality,
                "role": role,
                "email": f"{role}@test.nl",
            },
            key_id=tokens.key_id(self.private_key.public_key()),
            **overrides,
        )


def resident_token(
    api: Api,
    *,
    municipality: str,
    buurt: str,
    age_band: str | None = None,
    sex: str | None = None,
) -> str:
    """A resident token as panel would issue it, for a resident panel need not know about."""
    return issue_resident_token(
        api.private_key, municipality=municipality, buurt=buurt, age_band=age_band, sex=sex
    )


def issue_resident_token(
    private_key: Any,
    *,
    municipality: str,
    buurt: str,
    age_band: str | None = None,
    sex: str | None = None,
    self_selected: bool = False,
    key_id: str | None = None,
) -> str:
    """The token panel issues a resident (the format is the contract), signed with
    ``private_key``: for tests and benchmarks whose residents panel need not know about.
    ``key_id`` spares computing it per token when issuing many."""
    return tokens.issue_token(
        private_key,
        typ=tokens.RESIDENT_ACCESS,
        subject=str(uuid.uuid4()),
        issuer="buurtpeil",
        audience="buurtpeil-app",
        ttl_seconds=900,
        key_id=key_id or tokens.key_id(private_key.public_key()),
        claims={
            "sid": str(uuid.uuid4()),
            "mun": municipality,
            "wijk": f"WK{buurt[2:8]}",
            "buurt": buurt,
            "lang": "nl",
            "age_band": age_band,
            "sex": sex,
            "self_selected": self_selected,
        },
    )


def wait_ready(api: Api, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if api.request("GET", "/readyz").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gateway not ready: {api.request('GET', '/readyz').text}")


class GatewayProcesses:
    """Gateway replicas as production runs them: ``nameko run`` of deploy/Procfile's gateway
    line, each in an OS process of its own, configured by ``env`` (plus each start's own)."""

    def __init__(self, env: dict[str, str], log_dir: Any):
        self.env = env
        self.log_dir = log_dir
        self.started: list[Any] = []

    def start(self, port: int, **env: str) -> Any:
        from pathlib import Path

        from tests.support.infra import nameko_run

        log = Path(self.log_dir) / f"gateway-{len(self.started) + 1}.log"
        process = nameko_run(
            "gateway",
            {
                "LOG_LEVEL": "WARNING",
                "GATEWAY_METRICS_PORT": "0",
                **self.env,
                "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
                **env,
            },
            log,
        )
        process.log = log  # type: ignore[attr-defined]
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        import signal
        import subprocess

        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def serving_submissions(api: Api) -> bool:
    """Enough of /readyz for submissions: the broker and the poll cache (not every service
    needs to run)."""
    try:
        checks = api.request("GET", "/readyz").json()["checks"]
    except (requests.RequestException, ValueError, KeyError):
        return False
    return bool(checks.get("broker") and checks.get("poll_cache"))
