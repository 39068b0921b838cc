"""What a local run shows on screen: the platform so far, used over HTTP as the staff's
dashboard and the residents' app would use it — nothing but the gateway's public API."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import requests

from deploy.seed import ADMIN_EMAIL, ADMIN_PASSWORD

WIJKEN = ["WK034401", "WK034403", "WK034406"]  # West, Overvecht, Zuid
RESIDENTS = {"WK034401": "BU03440111", "WK034403": "BU03440311", "WK034406": "BU03440611"}


def say(message: str) -> None:
    print(f"[buurtpeil] {message}", flush=True)


class Http:
    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def __call__(
        self, method: str, path: str, token: str | None = None, expect: int = 200, **kwargs: Any
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.session.request(
            method, self.base + path, headers=headers, timeout=30, **kwargs
        )
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path} → {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None


def wait_until_ready(
    http: Http, processes: list[tuple[str, subprocess.Popen[bytes]]], timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        dead = [name for name, p in processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited; see .run-{dead[0]}.log")
        try:
            response = http.session.get(http.base + "/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the gateway did not become ready within {timeout:.0f} s: {last}")


def walkthrough(
    base_url: str, push_url: str, processes: list[tuple[str, subprocess.Popen[bytes]]]
) -> str:
    http = Http(base_url)
    push = Http(push_url)
    wait_until_ready(http, processes)
    say(f"gateway ready at {base_url}")

    staff = http("POST", "/admin/v1/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    admin = staff["access_token"]
    say(
        f"staff login: {staff['staff']['email']} ({staff['staff']['role']}, "
        f"{staff['staff']['municipality_code']})"
    )
    areas = http("GET", "/admin/v1/areas?level=wijk", admin)
    say(
        f"CBS areas: {len(areas)} wijken of Utrecht, e.g. {', '.join(a['name'] for a in areas[:3])}"
    )
    templates = http("GET", "/admin/v1/templates", admin)
    say(f"template library: {len(templates)} templates")
    for t in templates:
        size = f"{t['question_count']:>2} vragen, ~{t['estimated_minutes']} min"
        say(f"  {t['id']:<20} {size}  {t['title']}")

    batch = http(
        "POST",
        "/admin/v1/invitation-batches",
        admin,
        expect=201,
        json={"per_wijk": {w: 1 for w in WIJKEN}},
    )
    codes = [line.split(",") for line in batch["csv"].splitlines()[1:]]
    say(f"invitation codes for recruitment letters: {batch['size']} (one per wijk)")
    residents = []
    for code, wijk, _ in codes:
        joined = http(
            "POST",
            "/api/v1/join",
            expect=201,
            json={
                "invitation_code": code,
                "buurt_code": RESIDENTS[wijk],
                "birth_year": 1975,
                "sex": "vrouw",
                "language": "nl",
                "consent": True,
            },
        )
        residents.append(joined["access_token"])
        # The app subscribes to Web Push (the fake push service plays the browser) with the
        # VAPID key the gateway gives, and registers the subscription as a device.
        key = http("GET", "/api/v1/push/vapid-public-key")["application_server_key"]
        subscription = push("POST", "/subscribe", expect=201, json={"applicationServerKey": key})
        device = {
            "channel": "webpush",
            "endpoint": subscription["endpoint"],
            "keys": subscription["keys"],
        }
        http("POST", "/api/v1/devices", joined["access_token"], expect=201, json=device)
        say(
            f"  resident joined in {joined['resident']['buurt_code']} "
            f"({joined['resident']['wijk_code']}), Web Push subscribed"
        )

    poll = http(
        "POST",
        "/admin/v1/polls",
        admin,
        expect=201,
        json={
            "template_id": "veiligheidsgevoel",
            "reminder_after_hours": [72],
            "audience": {"kind": "areas", "area_codes": WIJKEN[:2]},
        },
    )
    say(f"draft poll {poll['id']}: {poll['title']!r} for {', '.join(WIJKEN[:2])}")
    before = push("GET", "/stats")["delivered"]
    published = http("POST", f"/admin/v1/polls/{poll['id']}/publish", admin)
    say(
        f"published: status={published['status']} version={published['version']} "
        f"hash={published['content_hash'][:12]}…"
    )
    delivered = wait_delivered(push, before + 2) - before
    say(f"invitations pushed and decrypted at the push service: {delivered}")
    visible = wait_visible(http, residents, poll["id"], expected=2)
    say(
        f"open poll visible in the app to {visible} of {len(residents)} residents "
        "(the third lives outside the chosen wijken)"
    )
    http("POST", f"/admin/v1/polls/{poll['id']}/close", admin)
    gone = wait_visible(http, residents, poll["id"], expected=0)
    say(f"closed: visible to {gone} residents")
    return (
        f"polls: templates={len(templates)} joined={len(residents)} published=1 "
        f"pushed={delivered} visible={visible} after_close={gone}"
    )


def wait_visible(
    http: Http, residents: list[str], poll_id: str, expected: int, timeout: float = 15
) -> int:
    deadline = time.monotonic() + timeout
    while True:
        seen = sum(
            any(p["poll_id"] == poll_id for p in http("GET", "/api/v1/polls", token))
            for token in residents
        )
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def wait_delivered(push: Http, expected: int, timeout: float = 30) -> int:
    """Deliveries the push service decrypted, once ``expected`` arrived (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        delivered = push("GET", "/stats")["delivered"]
        if delivered >= expected or time.monotonic() > deadline:
            return delivered
        time.sleep(0.2)
