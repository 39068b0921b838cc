"""The synthetic panel of a local run: residents spread over Utrecht's buurten in proportion to
the real (CBS) population, with ages and sexes drawn from their buurt's margins, who join and
answer the way the app does — over the gateway's public API only.

Most join with a code from a recruitment letter and subscribe to Web Push (the fake push
service plays their browsers); about one in ten signs up with an e-mail address instead (open
sign-up, so marked self-selected) and is reached by e-mail. Everything is drawn from one seeded
random generator, so a run is reproducible.

The pure parts (who lives where, who answers, what they answer) are plain functions with tests
in tests/unit/test_demo_panel.py; the HTTP parts take a client.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.common.pollspec import visible_questions

ADULT_BANDS = {"15_24": (15, 24), "25_44": (25, 44), "45_64": (45, 64), "65_plus": (65, 90)}
# Older residents answer more often, as in real panels: the weighting has something to correct.
ANSWER_PROPENSITY = {"15_24": 0.45, "25_44": 0.55, "45_64": 0.70, "65_plus": 0.80}
EMAIL_SHARE = 0.1
WORKERS = 8


@dataclass
class Member:
    """One synthetic resident as the demo knows them: their profile and their app's state."""

    buurt_code: str
    wijk_code: str
    age_band: str
    birth_year: int
    sex: str
    channel: str  # webpush | email
    email: str | None = None
    token: str | None = None
    endpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def draw_weighted(rng: random.Random, weights: dict[str, float]) -> str:
    keys = sorted(k for k, w in weights.items() if w and w > 0)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def allocate(total: int, populations: dict[str, int]) -> dict[str, int]:
    """Split ``total`` over areas in proportion to population (largest remainder)."""
    whole = sum(p for p in populations.values() if p)
    shares = {a: total * (p or 0) / whole for a, p in populations.items()}
    counts = {a: int(s) for a, s in shares.items()}
    for a in sorted(shares, key=lambda a: shares[a] - counts[a], reverse=True)[
        : total - sum(counts.values())
    ]:
        counts[a] += 1
    return counts


def profiles(
    buurten: Sequence[dict[str, Any]], size: int, rng: random.Random, today: date
) -> list[Member]:
    """``size`` residents over the buurten by population; age and sex from each buurt's CBS
    margins (15 and older: the panel's population)."""
    counts = allocate(size, {b["code"]: b.get("population") or 0 for b in buurten})
    by_code = {b["code"]: b for b in buurten}
    members = []
    for code in sorted(counts):
        buurt = by_code[code]
        ages = {band: (buurt.get("age") or {}).get(band) or 0 for band in ADULT_BANDS}
        if not any(ages.values()):
            ages = dict.fromkeys(ADULT_BANDS, 1)
        sexes = {s: (buurt.get("sex") or {}).get(s) or 0 for s in ("man", "vrouw")}
        if not any(sexes.values()):
            sexes = {"man": 1, "vrouw": 1}
        for _ in range(counts[code]):
            band = draw_weighted(rng, ages)
            low, high = ADULT_BANDS[band]
            members.append(
                Member(
                    buurt_code=code,
                    wijk_code=buurt["parent_code"],
                    age_band=band,
                    birth_year=today.year - rng.randint(low, high),
                    sex=draw_weighted(rng, sexes),
                    channel="email" if rng.random() < EMAIL_SHARE else "webpush",
                )
            )
    rng.shuffle(members)
    return members


def answers_for(
    definition: dict[str, Any], member: Member, feeling: dict[str, float], rng: random.Random
) -> dict[str, Any]:
    """A plausible answer set. The feeling of safety centres on the wijk's value in
    ``feeling`` (1–5), a little lower for older residents, so the results differ by wijk."""
    centre = feeling.get(member.wijk_code, 3.4) - (0.3 if member.age_band == "65_plus" else 0.0)
    score = min(5, max(1, round(rng.gauss(centre, 0.9))))
    answers: dict[str, Any] = {}
    for q in definition["questions"]:
        if q["id"] not in visible_questions(definition, answers):
            continue
        if not q.get("required", True) and rng.random() < 0.5:
            continue
        answers[q["id"]] = _answer(q, score, rng)
    return answers


def _answer(q: dict[str, Any], score: int, rng: random.Random) -> Any:
    options = [o["id"] for o in q.get("options", []) if not o.get("exclusive")]
    kind = q["type"]
    if kind == "likert5":
        return score
    if kind == "rating10":
        return min(10, max(0, score * 2 - 1 + rng.randint(0, 1)))
    if kind == "single_choice":
        # Options run from "often" to "never" in our templates: the unsafe feel it more often.
        index = min(len(options) - 1, max(0, round((score - 1) / 4 * (len(options) - 1))))
        if rng.random() < 0.25:
            index = rng.randrange(len(options))
        return options[index]
    if kind == "multiple_choice":
        low = max(1, q.get("min_selections", 1))
        high = min(len(options), q.get("max_selections", len(options)), 3)
        return rng.sample(options, rng.randint(low, max(low, high)))
    if kind == "open_text":
        return rng.choice(OPEN_TEXTS)
    if kind == "ranking":
        picked = options[:]
        rng.shuffle(picked)
        return picked[: q.get("rank_count", len(options))]
    if kind == "location":
        return {"lat": 52.0907 + rng.uniform(-0.01, 0.01), "lon": 5.1214 + rng.uniform(-0.01, 0.01)}
    raise ValueError(f"no synthetic answer for question type {kind}")


OPEN_TEXTS = (
    "Meer licht op het fietspad langs het park.",
    "De bosjes bij de speeltuin mogen gesnoeid worden.",
    "Vaker een wijkagent op straat.",
    "Het plein is 's avonds erg donker.",
    "Prima zo, ik voel me hier thuis.",
    "Minder hard rijden in onze straat.",
)


# --- over HTTP -------------------------------------------------------------------------------


def in_parallel(
    items: Sequence[Any],
    work: Callable[[Any], Any],
    progress: Callable[[int, int], None] | None = None,
    workers: int = WORKERS,
) -> list[Any]:
    """``work`` on every item, ``workers`` at a time (one HTTP session per thread)."""
    done = 0
    lock = threading.Lock()
    step = max(1, len(items) // 5)

    def run(item: Any) -> Any:
        nonlocal done
        result = work(item)
        with lock:
            done += 1
            if progress and (done % step == 0 or done == len(items)):
                progress(done, len(items))
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, items))


CODE = re.compile(r"\b(\d{6})\b")


def verification_code(mail: Any, address: str, timeout: float = 20) -> str:
    """The six-digit code panel e-mailed to ``address`` (read from the mail catcher)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in reversed(mail("GET", f"/messages?to={address}")):
            found = CODE.search(message["text"])
            if found:
                return found.group(1)
        time.sleep(0.1)
    raise RuntimeError(f"no verification code reached {address} within {timeout:.0f} s")


def join_panel(
    http: Any,
    push: Any,
    mail: Any,
    municipality: str,
    members: list[Member],
    codes: Iterable[tuple[str, str]],
    say: Callable[[str], None],
) -> None:
    """Every member joins: with a letter code and a Web Push subscription, or by open sign-up
    with an e-mail address. ``codes`` are (code, wijk) pairs from an invitation batch."""
    free: dict[str, list[str]] = {}
    for code, wijk in codes:
        free.setdefault(wijk, []).append(code)
    vapid = http("GET", "/api/v1/push/vapid-public-key")["application_server_key"]

    def profile(m: Member) -> dict[str, Any]:
        return {
            "buurt_code": m.buurt_code,
            "birth_year": m.birth_year,
            "sex": m.sex,
            "language": "nl",
            "consent": True,
        }

    def join(m: Member) -> None:
        if m.channel == "email":
            m.email = f"bewoner-{uuid.uuid4().hex[:12]}@utrecht.localhost"
            http(
                "POST",
                "/api/v1/signup",
                expect=202,
                json={"municipality_code": municipality, "email": m.email},
            )
            code = verification_code(mail, m.email)
            joined = http(
                "POST",
                "/api/v1/signup/verify",
                expect=201,
                json={
                    **profile(m),
                    "municipality_code": municipality,
                    "email": m.email,
                    "code": code,
                },
            )
            m.token = joined["access_token"]
            return
        joined = http(
            "POST",
            "/api/v1/join",
            expect=201,
            json={**profile(m), "invitation_code": m.extra.pop("code")},
        )
        m.token = joined["access_token"]
        # The app subscribes to Web Push with the VAPID key the gateway gives, and registers
        # the subscription as a device.
        subscription = push("POST", "/subscribe", expect=201, json={"applicationServerKey": vapid})
        m.endpoint = subscription["endpoint"]
        device = {"channel": "webpush", "endpoint": m.endpoint, "keys": subscription["keys"]}
        http("POST", "/api/v1/devices", m.token, expect=201, json=device)

    for m in members:
        if m.channel == "webpush":
            if not free.get(m.wijk_code):
                raise RuntimeError(f"the invitation batch has no code left for {m.wijk_code}")
            m.extra["code"] = free[m.wijk_code].pop()
    in_parallel(members, join, lambda n, total: say(f"  panel: {n}/{total} joined"))
