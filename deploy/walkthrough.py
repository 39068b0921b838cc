"""What a local run shows on screen: the platform so far, used over HTTP as the staff's
dashboard and the residents' app would use it — nothing but the gateway's public API."""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import requests

from deploy.seed import ADMIN_EMAIL, ADMIN_PASSWORD
from services.common.pollspec import visible_questions

WIJKEN = ["WK034401", "WK034403", "WK034406"]  # West, Overvecht, Zuid
RESIDENTS = {"WK034401": "BU03440111", "WK034403": "BU03440311", "WK034406": "BU03440611"}


def say(message: str) -> None:
    print(f"[buurtpeil] {message}", flush=True)


class Http:
    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def __call__(
        self,
        method: str,
        path: str,
        token: str | None = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
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
    answered = 0
    for token in residents:
        if not any(p["poll_id"] == poll["id"] for p in http("GET", "/api/v1/polls", token)):
            continue
        detail = http("GET", f"/api/v1/polls/{poll['id']}", token)
        me = http("GET", "/api/v1/me", token)
        accepted = http(
            "POST",
            f"/api/v1/polls/{poll['id']}/responses",
            token,
            expect=202,
            json={"answers": synthetic_answers(detail["definition"], me["wijk_code"])},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        status = wait_receipt(http, token, accepted["receipt_id"])
        answered += status == "recorded"
        say(f"  a resident of {me['wijk_code']} answered: receipt {status}")
    http("POST", f"/admin/v1/polls/{poll['id']}/close", admin)
    gone = wait_visible(http, residents, poll["id"], expected=0)
    say(f"closed: visible to {gone} residents")
    return (
        f"polls: templates={len(templates)} joined={len(residents)} published=1 "
        f"pushed={delivered} visible={visible} answered={answered} after_close={gone}"
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


def synthetic_answers(definition: dict[str, Any], wijk: str) -> dict[str, Any]:
    """A plausible answer set: the required questions that are shown, with the feeling of
    safety depending on the wijk so the results show a difference."""
    feeling = {"WK034401": 4, "WK034403": 2}.get(wijk, 3)
    answers: dict[str, Any] = {}
    for q in definition["questions"]:
        if not q.get("required", True) or q["id"] not in visible_questions(definition, answers):
            continue
        options = [o["id"] for o in q.get("options", []) if not o.get("exclusive")]
        answers[q["id"]] = {
            "likert5": feeling,
            "rating10": feeling * 2,
            "single_choice": options[:1] and options[0],
            "multiple_choice": options[:1],
            "open_text": "Meer licht in het park.",
            "ranking": options[: q.get("rank_count", len(options))],
            "location": {"lat": 52.0907, "lon": 5.1214},
        }[q["type"]]
    return answers


def wait_receipt(http: Http, token: str, receipt: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = http("GET", f"/api/v1/receipts/{receipt}", token)["status"]
        if status != "accepted" or time.monotonic() > deadline:
            return status
        time.sleep(0.2)
